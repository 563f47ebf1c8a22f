/**
 * The request panel: a small form (executable, cores, memory, duration, data DIDs) or a pasted
 * IVOA document, turned into `requestOffers(request:)`. The server's validation messages name the
 * field by its JSON pointer (`/compute/cores/min`); each is shown next to the input that path
 * belongs to, and anything no input owns goes at the top of the panel.
 */
import { GraphQLRequestError, type ExecutionRequestInput } from '@srcnet/execution-step-client';
import { h } from './dom.ts';

const KINDS = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds';

export interface Issue {
  path: string;
  message: string;
}

/** What the panel hands on: the request to send, or what is wrong with it. */
export type Submission = { request: ExecutionRequestInput } | { issues: Issue[] };

/** The issues a failed GraphQL call reports, each with the field path it names ('/' for none). */
export function issuesOf(error: unknown): Issue[] {
  if (!(error instanceof GraphQLRequestError)) return [{ path: '/', message: (error as Error).message }];
  return error.errors.flatMap((item): Issue[] => {
    const issues = item.extensions?.['issues'];
    if (Array.isArray(issues)) return issues as Issue[];
    // The gateway's own input coercion: `Variable "$request" got invalid value … at "request.compute.cores.min"`.
    const at = /at "request((?:\.[^".]+)*)"/.exec(item.message);
    return [{ path: at?.[1] ? at[1].replace(/\./g, '/') : '/', message: item.message }];
  });
}

/** A DID as Rucio writes it, `namespace:name`. */
const DID = /^([^:\s]+):(\S+)$/;

interface Field {
  /** The JSON pointer prefix whose issues this field shows. */
  path: string;
  element: HTMLElement;
  error: HTMLElement;
}

function field(path: string, label: string, input: HTMLElement, hint?: string): Field {
  const error = h('p', { className: 'field-error', attrs: { role: 'alert' } });
  const element = h(
    'div',
    { className: 'field', attrs: { 'data-field': path } },
    h('label', {}, h('span', { className: 'label' }, label), input),
    hint ? h('p', { className: 'hint' }, hint) : null,
    error,
  );
  return { path, element, error };
}

export class RequestPanel {
  readonly element: HTMLElement;
  private readonly fields: Field[];
  private readonly general = h('div', { className: 'general-error', attrs: { role: 'alert' } });
  private mode: 'form' | 'document' = 'form';

  private readonly kind = h(
    'select',
    { id: 'executable-kind', name: 'kind' },
    h('option', { value: 'container' }, 'container image'),
    h('option', { value: 'notebook' }, 'Jupyter notebook URL'),
  );
  private readonly location = h('input', {
    id: 'executable-location',
    name: 'location',
    required: true,
    value: 'ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13',
  });
  private readonly digest = h('input', {
    id: 'executable-digest',
    name: 'digest',
    placeholder: 'sha256:…',
    value: 'sha256:5d22a47f43b2b5efc433554092de724bd6c3cf01d2c74038f6569770a5dd5245',
  });
  private readonly cores = h('input', { id: 'cores', name: 'cores', type: 'number', value: '2' });
  private readonly memory = h('input', { id: 'memory', name: 'memory', type: 'number', value: '4' });
  private readonly minutes = h('input', { id: 'duration', name: 'duration', type: 'number', value: '30' });
  private readonly dids = h('textarea', {
    id: 'data-dids',
    name: 'dids',
    rows: 2,
    placeholder: 'testing:zrq-test-20250509-082506',
  });
  private readonly document = h('textarea', {
    id: 'document',
    name: 'document',
    rows: 14,
    spellcheck: false,
    placeholder:
      'executable:\n  kind: …/executable/docker-container.yaml\n  image:\n    locations: [ghcr.io/…]\n…',
  });

  constructor(
    private readonly readDocument: (text: string) => Promise<Submission>,
    private readonly onSubmit: (request: ExecutionRequestInput) => Promise<void>,
  ) {
    const digestField = field('/executable/image/digest', 'image digest (optional)', this.digest);
    const formFields = [
      field('/executable/kind', 'executable', this.kind),
      field('/executable', 'image or notebook URL', this.location),
      digestField,
      field('/compute/cores', 'cores', this.cores),
      field('/compute/memory', 'memory (GiB)', this.memory),
      field('/schedule', 'duration (minutes)', this.minutes),
      field(
        '/data',
        'data DIDs (optional)',
        this.dids,
        'one namespace:name a line, staged from the data lake',
      ),
    ];
    const documentField = field('/', 'IVOA ExecutionRequest (JSON or YAML, 1.0.5 to 1.0.7)', this.document);
    this.fields = [...formFields, documentField];
    this.kind.onchange = () => {
      const container = this.kind.value === 'container';
      digestField.element.hidden = !container;
      this.location.value = container
        ? 'ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13'
        : 'https://raw.githubusercontent.com/Zarquan/binder-demo/main/02_dmhh.ipynb';
    };

    const formPart = h(
      'div',
      { className: 'mode-form' },
      formFields.map((item) => item.element),
    );
    const documentPart = h('div', { className: 'mode-document', hidden: true }, documentField.element);
    const tab = (mode: 'form' | 'document', label: string) =>
      h('button', {
        type: 'button',
        className: 'tab',
        id: `mode-${mode}`,
        textContent: label,
        onclick: () => {
          this.mode = mode;
          formPart.hidden = mode !== 'form';
          documentPart.hidden = mode !== 'document';
          this.element
            .querySelectorAll('.tab')
            .forEach((button) => button.classList.toggle('active', button.id === `mode-${mode}`));
          this.showIssues([]);
        },
      });
    const submit = h('button', { type: 'submit', id: 'request-offers', textContent: 'Ask for offers' });
    const form = h(
      'form',
      // The server's messages are the ones shown; the browser's own checks would hide them.
      { noValidate: true },
      h('div', { className: 'tabs' }, tab('form', 'Form'), tab('document', 'IVOA document')),
      this.general,
      formPart,
      documentPart,
      submit,
    );
    form.querySelector('.tab')!.classList.add('active');
    form.onsubmit = async (event) => {
      event.preventDefault();
      submit.disabled = true;
      submit.textContent = 'Asking…';
      try {
        const submission =
          this.mode === 'form' ? this.fromForm() : await this.readDocument(this.document.value);
        if ('issues' in submission) this.showIssues(submission.issues);
        else {
          this.showIssues([]);
          await this.onSubmit(submission.request);
        }
      } catch (error) {
        this.showIssues(issuesOf(error));
      } finally {
        submit.disabled = false;
        submit.textContent = 'Ask for offers';
      }
    };
    this.element = h('section', { id: 'request', className: 'panel' }, h('h2', {}, 'New request'), form);
  }

  private fromForm(): Submission {
    const issues: Issue[] = [];
    const number = (input: HTMLInputElement, path: string) => {
      if (input.value.trim() === '') return undefined;
      const value = Number(input.value);
      if (!Number.isFinite(value)) issues.push({ path, message: `${input.value} is not a number` });
      return value;
    };
    const location = this.location.value.trim();
    const executable =
      this.kind.value === 'container'
        ? {
            kind: `${KINDS}/executable/docker-container.yaml`,
            image: {
              locations: [location],
              ...(this.digest.value.trim() ? { digest: this.digest.value.trim() } : {}),
            },
          }
        : { kind: `${KINDS}/executable/jupyter-notebook.yaml`, location };
    const cores = number(this.cores, '/compute/cores/min');
    const memory = number(this.memory, '/compute/memory/min');
    const minutes = number(this.minutes, '/schedule/requested/duration');
    const data = this.dids.value
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((did, index) => {
        const match = DID.exec(did);
        if (!match) issues.push({ path: `/data/${index}`, message: `${did} is not a DID (namespace:name)` });
        return {
          kind: `${KINDS}/data/rucio-data-resource.yaml`,
          rucio: { scope: match?.[1], object: match?.[2] },
        };
      });
    if (issues.length) return { issues };
    return {
      request: {
        executable,
        compute: {
          kind: `${KINDS}/compute/simple-compute-resource.yaml`,
          ...(cores !== undefined ? { cores: { min: cores } } : {}),
          ...(memory !== undefined ? { memory: { min: memory } } : {}),
        },
        ...(minutes !== undefined ? { schedule: { requested: { duration: `PT${minutes}M` } } } : {}),
        ...(data.length ? { data } : {}),
      },
    };
  }

  /** Shows each issue next to the visible field whose path is the longest prefix of the issue's. */
  showIssues(issues: Issue[]) {
    for (const item of this.fields) item.error.replaceChildren();
    this.general.replaceChildren();
    const visible = this.fields.filter((item) => !item.element.closest<HTMLElement>('[hidden]'));
    for (const issue of issues) {
      const owner = visible
        .filter(
          (item) =>
            issue.path === item.path || issue.path.startsWith(item.path === '/' ? '/' : `${item.path}/`),
        )
        .sort((a, b) => b.path.length - a.path.length)[0];
      const text = issue.path === '/' ? issue.message : `${issue.path}: ${issue.message}`;
      (owner?.error ?? this.general).append(h('span', {}, text));
    }
  }

  /** Messages that belong to no field, such as an offer set's reasons for saying no. */
  showMessages(messages: string[]) {
    this.showIssues(messages.map((message) => ({ path: '/', message })));
  }
}
