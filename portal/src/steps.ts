/**
 * The caller's steps as cards that change in place as events arrive: phase, progress bars for the
 * image copy and each data staging, the estimated ready time, the timeline, connector links and a
 * cancel button. Offers (OFFERED, and the REJECTED or EXPIRED ones not chosen) stay in the offers
 * panel; a step appears here once accepted.
 */
import type { ExecutionStepPhase, LiveStepFragment } from './generated/operations.ts';
import { h } from './dom.ts';
import { estimateDetails, readyText, readyTimes } from './estimates.ts';
import { bytes, clock, duration, relative, startOf } from './format.ts';

type Step = LiveStepFragment;

const OFFER_PHASES: ExecutionStepPhase[] = ['INITIAL', 'OFFERED', 'REJECTED', 'EXPIRED'];
const ENDED: ExecutionStepPhase[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'RELEASING'];
const BEFORE_READY: ExecutionStepPhase[] = ['ACCEPTED', 'WAITING', 'PREPARING'];
/** Phases worth listing on sign-in; ended steps from before stay out of the way. */
export const LISTED_PHASES = (
  [
    'ACCEPTED',
    'WAITING',
    'PREPARING',
    'AVAILABLE',
    'RUNNING',
    'RELEASING',
    'COMPLETED',
    'FAILED',
    'CANCELLED',
  ] as const
).slice();

/**
 * How far the image copy is, 0..1, or undefined when unknown. Harbor reports only a copy's start
 * and end, so while it copies with no byte count the bar follows the estimate of its duration
 * (capped below 1) from when this page first saw it copying, and says it is an estimate.
 */
function imageProgress(image: NonNullable<Step['image']>, copyingSince: number | undefined, now: number) {
  if (image.copyState === 'SUCCEEDED' || image.copyState === 'NOT_NEEDED')
    return { fraction: 1, estimated: false };
  if (image.sizeBytes && image.bytesDone !== null)
    return { fraction: image.bytesDone / image.sizeBytes, estimated: false };
  if (image.copyState === 'COPYING' && image.estimatedCopySeconds && copyingSince !== undefined) {
    const fraction = Math.min(0.95, (now - copyingSince) / 1000 / image.estimatedCopySeconds);
    return { fraction, estimated: true };
  }
  if (image.copyState === 'CHECKING') return { fraction: 0, estimated: false };
  return { fraction: undefined, estimated: false };
}

function progress(kind: string, label: string, fraction: number | undefined, detail: string, state: string) {
  return h(
    'div',
    { className: `progress state-${state.toLowerCase()}` },
    h('span', { className: 'progress-label' }, label),
    // No value attribute means indeterminate: the size is not known yet.
    h('progress', {
      max: 1,
      attrs: { 'data-progress': kind, value: fraction === undefined ? undefined : fraction.toFixed(3) },
    }),
    h('span', { className: 'progress-detail' }, detail),
  );
}

const isLink = (location: string | null | undefined): location is string =>
  !!location && /^https?:\/\//.test(location);

export class StepList {
  readonly element: HTMLElement;
  private readonly list = h('div', { className: 'steps' });
  private readonly empty = h('p', { className: 'empty' }, 'No steps yet: ask for offers and accept one.');
  private readonly steps = new Map<string, Step>();
  private readonly cards = new Map<string, HTMLElement>();
  private readonly copyingSince = new Map<string, number>();
  /** Survives re-rendering: a cancel in flight, a timeline the user folded. */
  private readonly cancelling = new Set<string>();
  private readonly folded = new Set<string>();
  private readonly estimatesOpen = new Set<string>();
  private readonly error = new Map<string, string>();
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(private readonly cancel: (id: string) => Promise<void>) {
    this.element = h(
      'section',
      { id: 'steps', className: 'panel' },
      h('h2', {}, 'Your steps'),
      this.empty,
      this.list,
    );
    // Estimated bars and "in 20 s" move with the clock between events.
    this.ticker = setInterval(() => {
      for (const [id, step] of this.steps) if (this.isTicking(step)) this.render(id);
    }, 500);
  }

  private isTicking(step: Step) {
    return BEFORE_READY.includes(step.phase) || step.image?.copyState === 'COPYING';
  }

  update(step: Step) {
    if (OFFER_PHASES.includes(step.phase) && !this.steps.has(step.id)) return;
    if (step.image?.copyState === 'COPYING') {
      if (!this.copyingSince.has(step.id)) this.copyingSince.set(step.id, Date.now());
    }
    this.steps.set(step.id, step);
    if (!this.cards.has(step.id)) {
      const card = h('article', { className: 'step', attrs: { 'data-step-id': step.id } });
      this.cards.set(step.id, card);
      this.list.prepend(card);
      this.empty.hidden = true;
    }
    this.render(step.id);
  }

  /** Shows a step read outside the subscription unless an event about it came first. */
  seed(step: Step) {
    if (!this.steps.has(step.id)) this.update(step);
  }

  clear() {
    this.steps.clear();
    this.cards.clear();
    this.copyingSince.clear();
    this.error.clear();
    this.folded.clear();
    this.estimatesOpen.clear();
    this.list.replaceChildren();
    this.empty.hidden = false;
  }

  dispose() {
    clearInterval(this.ticker);
  }

  private render(id: string) {
    const step = this.steps.get(id)!;
    const card = this.cards.get(id)!;
    const now = Date.now();
    const executable = step.executable;
    const what =
      executable?.__typename === 'DockerContainer'
        ? (executable.image?.locations?.[0] ?? 'container')
        : executable && 'location' in executable
          ? (executable.location ?? executable.__typename)
          : '—';
    const ready = startOf(step.schedule?.available?.start);
    const readyBy = readyTimes(step.estimates);
    const cancellable = !ENDED.includes(step.phase) && !OFFER_PHASES.includes(step.phase);
    const cancelButton = h('button', {
      type: 'button',
      className: 'cancel danger',
      attrs: { 'data-focus': 'cancel' },
      disabled: this.cancelling.has(id),
      textContent: this.cancelling.has(id) ? 'Cancelling…' : 'Cancel',
    });
    cancelButton.onclick = async () => {
      this.cancelling.add(id);
      this.render(id);
      try {
        await this.cancel(id);
      } catch (error) {
        this.error.set(id, (error as Error).message);
      } finally {
        this.cancelling.delete(id);
        this.render(id);
      }
    };

    const bars = [];
    if (step.image) {
      const { fraction, estimated } = imageProgress(step.image, this.copyingSince.get(id), now);
      const size = step.image.sizeBytes ? ` of ${bytes(step.image.sizeBytes)}` : '';
      const percent =
        fraction === undefined ? '' : ` ${Math.round(fraction * 100)}%${estimated ? ' (estimated)' : ''}`;
      bars.push(
        progress(
          'image',
          'image copy',
          fraction,
          `${step.image.copyState ?? 'lookup'}${percent}${size}`,
          step.image.copyState ?? 'none',
        ),
      );
    }
    for (const job of step.dataStaging) {
      const detail =
        `${job.state} ${bytes(job.bytesDone)} / ${bytes(job.bytesTotal)}` +
        (job.estimatedSecondsLeft ? `, ${Math.round(job.estimatedSecondsLeft)} s left` : '');
      bars.push(
        progress(
          'staging',
          `data ${job.source ?? job.resourceName ?? ''}`,
          job.fraction ?? undefined,
          detail,
          job.state,
        ),
      );
    }

    // The session's connect URL is usually also a connector's location: one link each.
    const links = new Map<string, string>();
    for (const connector of step.connectors)
      if (isLink(connector.location))
        links.set(
          connector.location,
          `${connector.protocol ?? 'connect'}${connector.status ? ` (${connector.status.toLowerCase()})` : ''}`,
        );
    if (isLink(step.skahaSession?.connectURL)) links.set(step.skahaSession.connectURL, 'open session');
    const messages = step.meta.messages.filter((message) => message.message);

    card.className = `step phase-${step.phase.toLowerCase()}`;
    const parts = [
      h(
        'header',
        {},
        h('span', { className: 'phase', attrs: { 'data-phase': step.phase } }, step.phase),
        h('span', { className: 'what', title: step.id }, what),
        cancellable ? cancelButton : null,
      ),
      h(
        'p',
        { className: 'schedule' },
        // The broker's estimates say how sure the ready time is; steps from before it sent them
        // have only the offered start.
        readyBy && BEFORE_READY.includes(step.phase)
          ? readyText(readyBy, now)
          : ready && BEFORE_READY.includes(step.phase)
            ? h(
                'span',
                { attrs: { 'data-ready-at': ready.toISOString() } },
                `ready ≈ ${clock(ready)} (${relative(ready, now)})`,
              )
            : ready
              ? `available from ${clock(ready)} for ${duration(step.schedule?.available?.duration)}`
              : null,
        step.skahaSession
          ? h('span', { className: 'session' }, ` · Skaha session ${step.skahaSession.status}`)
          : null,
      ),
      readyBy && step.estimates && BEFORE_READY.includes(step.phase)
        ? estimateDetails(step.estimates, this.estimatesOpen.has(id), (open) => {
            if (open) this.estimatesOpen.add(id);
            else this.estimatesOpen.delete(id);
          })
        : null,
      bars.length ? h('div', { className: 'bars' }, bars) : null,
      links.size
        ? h(
            'p',
            { className: 'links' },
            [...links].map(([href, text]) =>
              h(
                'a',
                { href, target: '_blank', rel: 'noopener', attrs: { 'data-focus': `link ${href}` } },
                text,
              ),
            ),
          )
        : null,
      messages.length
        ? h(
            'ul',
            { className: 'messages' },
            messages.map((message) =>
              h('li', { className: `level-${(message.level ?? 'info').toLowerCase()}` }, message.message),
            ),
          )
        : null,
      h('p', { className: 'step-error', attrs: { role: 'alert' } }, this.error.get(id)),
      h(
        'details',
        {
          className: 'timeline',
          open: !this.folded.has(id),
          ontoggle: (event: Event) => {
            if ((event.target as HTMLDetailsElement).open) this.folded.delete(id);
            else this.folded.add(id);
          },
        },
        h('summary', { attrs: { 'data-focus': 'timeline' } }, `timeline (${step.history.length})`),
        h(
          'ol',
          {},
          step.history.map((change) => {
            const at = startOf(change.at);
            return h(
              'li',
              {},
              h('time', { dateTime: change.at }, at ? clock(at) : change.at),
              ` ${change.from} → ${change.to}`,
              change.cause ? h('span', { className: 'cause' }, ` ${change.cause}`) : null,
            );
          }),
        ),
      ),
    ];
    // The card is drawn afresh (every 500 ms while it ticks): keyboard focus goes back to the
    // control that had it.
    const active = document.activeElement;
    const focused = active instanceof HTMLElement && card.contains(active) ? active.dataset.focus : undefined;
    card.replaceChildren(...parts.filter((part) => part !== null));
    if (focused)
      [...card.querySelectorAll<HTMLElement>('[data-focus]')]
        .find((e) => e.dataset.focus === focused)
        ?.focus();
  }
}
