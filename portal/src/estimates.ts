/**
 * A step's or an offer's expected ready time in words, and a small fold-out of what it rests on:
 * each preparation action's median and bound and the history behind them (observations, level).
 */
import type { StepSummaryFragment } from './generated/operations.ts';
import { h } from './dom.ts';
import { clock, medianAndBound, readyIn, startOf } from './format.ts';

type Estimates = NonNullable<StepSummaryFragment['estimates']>;

/** The median and bound ready times, or undefined when the broker sent none or unreadable ones. */
export function readyTimes(estimates: Estimates | null | undefined) {
  const median = startOf(estimates?.readyMedianAt);
  const bound = startOf(estimates?.readyBoundAt);
  return median && bound ? { median, bound } : undefined;
}

/** "ready in about 4 minutes, 9 at most", with the bound's clock time as a tooltip. */
export function readyText(times: { median: Date; bound: Date }, now = Date.now()) {
  return h(
    'span',
    {
      className: 'ready-in',
      title: `expected at ${clock(times.median)}, at the latest ${clock(times.bound)}`,
      attrs: { 'data-ready-at': times.bound.toISOString() },
    },
    readyIn(times.median, times.bound, now),
  );
}

const percent = (quantile: number | null) =>
  quantile === null ? '' : ` (${Math.round(quantile * 1000) / 10}% likely)`;

/**
 * What the estimate rests on: the two clock times, the whole preparation's median and bound, and
 * each preparation action's, with how many observations it rests on and at which level.
 */
export function estimateBody(estimates: Estimates) {
  const times = readyTimes(estimates);
  return h(
    'div',
    { className: 'estimate-body' },
    times ? h('p', {}, `expected at ${clock(times.median)}, at the latest ${clock(times.bound)}`) : null,
    h(
      'p',
      {},
      `preparation ${medianAndBound(estimates.medianSeconds, estimates.boundSeconds)}${percent(estimates.quantile)}`,
    ),
    estimates.actions.length
      ? h(
          'ul',
          {},
          estimates.actions.map((action) =>
            h(
              'li',
              { attrs: { 'data-action': action.action } },
              h('span', { className: 'action' }, `${action.action} (${action.role})`),
              `: ${medianAndBound(action.medianSeconds, action.boundSeconds)}${percent(action.quantile)} · `,
              h(
                'span',
                { className: 'basis', title: action.basis.group },
                `${action.basis.n} observation${action.basis.n === 1 ? '' : 's'}, ${action.basis.level}`,
              ),
              action.note ? h('span', { className: 'note' }, ` · ${action.note}`) : null,
            ),
          ),
        )
      : h('p', {}, 'nothing to prepare'),
  );
}

/**
 * The estimate's grounds folded away under the ready time: native <details> so keyboards and
 * screen readers get it for free. `open` and `ontoggle` let a card that re-renders keep the
 * user's choice.
 */
export function estimateDetails(estimates: Estimates, open = false, ontoggle?: (open: boolean) => void) {
  return h(
    'details',
    {
      className: 'estimate-details',
      open,
      ontoggle: (event: Event) => ontoggle?.((event.target as HTMLDetailsElement).open),
    },
    h('summary', { attrs: { 'data-focus': 'estimates' } }, 'how this was estimated'),
    estimateBody(estimates),
  );
}
