import {
  Kind,
  getOperationAST,
  parse,
  print,
  visit,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type VariableDefinitionNode,
} from 'graphql';

export const ROOT_FIELD = 'executionStepChanged';

/** Phases in which a step can still change: what "all my steps" starts with. */
const ACTIVE_PHASES = ['OFFERED', 'ACCEPTED', 'WAITING', 'PREPARING', 'AVAILABLE', 'RUNNING', 'RELEASING'];
/** How many active steps a new all-steps subscription is shown first. */
export const INITIAL_STEPS = 200;

/**
 * A client's `executionStepChanged` subscription, turned into the queries the fan-out runs for it:
 * the same selection on `executionStep(id)` (per change) and on the active steps (on subscribe).
 */
export interface StepOperation {
  /** The response key of the root field (its alias, if any). */
  rootKey: string;
  /** `query($gatewayStepId: ID!, …) { <rootKey>: executionStep(id: $gatewayStepId) { … } }` */
  stepQuery: DocumentNode;
  /** `query(…) { steps: executionSteps(filter: {phase: ACTIVE}, first: 200) { edges { node { … } } } }` */
  activeStepsQuery: DocumentNode;
  /** Response keys of `phase` in the step's own selection, which each event sets to its transition. */
  phaseKeys: string[];
  /** Variables the selection uses (for @include and the like): part of what subscribers share. */
  variableNames: string[];
  /** Identifies the selection: subscribers with equal keys and variables share every fetch. */
  selectionKey: string;
  /** The `id` argument: a literal, a variable name, or absent for all the caller's steps. */
  stepId: { literal: string } | { variable: string } | undefined;
}

const cache = new WeakMap<DocumentNode, Map<string | undefined, StepOperation | null>>();

/**
 * The StepOperation of a subscription document, or null when the operation is something else (it
 * then runs the runtime's own way). Documents are parsed once and cached by the server, so this
 * analysis is too.
 */
export function stepOperation(document: DocumentNode, operationName?: string | null): StepOperation | null {
  let byName = cache.get(document);
  if (!byName) cache.set(document, (byName = new Map()));
  const key = operationName ?? undefined;
  if (!byName.has(key)) byName.set(key, analyse(document, key));
  return byName.get(key)!;
}

function analyse(document: DocumentNode, operationName: string | undefined): StepOperation | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'subscription') return null;
  const [root, ...others] = operation.selectionSet.selections;
  if (others.length || root?.kind !== Kind.FIELD || root.name.value !== ROOT_FIELD) return null;
  if (root.directives?.length || !root.selectionSet) return null;

  const fragments = document.definitions.filter(
    (definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION,
  );
  const used = new Set<string>();
  for (const node of [root.selectionSet, ...fragments]) {
    visit(node, { Variable: (variable) => void used.add(variable.name.value) });
  }
  const definitions = (operation.variableDefinitions ?? []).filter((definition) =>
    used.has(definition.variable.name.value),
  );
  const rootKey = root.alias?.value ?? ROOT_FIELD;
  const selection = print(root.selectionSet);
  const fragmentText = fragments.map((fragment) => print(fragment)).join('\n');
  const argument = root.arguments?.find((arg) => arg.name.value === 'id')?.value;
  const stepId =
    argument?.kind === Kind.STRING
      ? { literal: argument.value }
      : argument?.kind === Kind.VARIABLE
        ? { variable: argument.name.value }
        : undefined;

  return {
    rootKey,
    stepQuery: parse(
      `query GatewayStepChanged(${['$gatewayStepId: ID!', ...definitions.map(printDefinition)].join(', ')}) ` +
        `{ ${rootKey}: executionStep(id: $gatewayStepId) ${selection} }\n${fragmentText}`,
    ),
    activeStepsQuery: parse(
      `query GatewayActiveSteps${definitions.length ? `(${definitions.map(printDefinition).join(', ')})` : ''} ` +
        `{ steps: executionSteps(filter: { phase: [${ACTIVE_PHASES.join(', ')}] }, first: ${INITIAL_STEPS}) ` +
        `{ edges { node ${selection} } } }\n${fragmentText}`,
    ),
    phaseKeys: [...phaseKeysOf(root.selectionSet, fragments, new Set())],
    variableNames: definitions.map((definition) => definition.variable.name.value),
    selectionKey: `${selection}\n${fragmentText}`,
    stepId,
  };
}

const printDefinition = (definition: VariableDefinitionNode) => print(definition);

function* phaseKeysOf(
  selectionSet: SelectionSetNode,
  fragments: FragmentDefinitionNode[],
  seen: Set<string>,
): Generator<string> {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if ((selection as FieldNode).name.value === 'phase') yield selection.alias?.value ?? 'phase';
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      yield* phaseKeysOf(selection.selectionSet, fragments, seen);
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = fragments.find((item) => item.name.value === selection.name.value);
      if (fragment) yield* phaseKeysOf(fragment.selectionSet, fragments, seen);
    }
  }
}
