/**
 * The offers of one offer set side by side (start, ready time, duration, resources, expiry), to
 * accept one. The ready times read as waits ("ready in about 4 minutes, 9 at most") that count
 * down while the user compares.
 */
import type { RequestOffersMutation } from '@srcnet/execution-step-client';
import { h } from './dom.ts';
import { estimateBody, readyText, readyTimes } from './estimates.ts';
import { clock, duration, range, readyIn, relative, startOf } from './format.ts';

type OfferSet = RequestOffersMutation['requestOffers'];
type Offer = OfferSet['offers'][number];

export class OffersPanel {
  readonly element = h('section', { id: 'offers', className: 'panel', hidden: true });
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly accept: (offer: Offer) => Promise<void>) {}

  show(offerSet: OfferSet) {
    this.stopTicking();
    /** Each offer's wait, rewritten in place so an open fold-out or a focused button stays put. */
    const waits: { element: HTMLElement; times: NonNullable<ReturnType<typeof readyTimes>> }[] = [];
    const error = h('p', { className: 'general-error', attrs: { role: 'alert' } });
    const row = (offer: Offer, index: number) => {
      const preparing = startOf(offer.schedule?.preparing?.start);
      const ready = startOf(offer.schedule?.available?.start);
      const times = readyTimes(offer.estimates);
      const wait = times && readyText(times);
      if (wait) waits.push({ element: wait, times });
      const expires = startOf(offer.expires);
      const compute = offer.compute?.__typename === 'SimpleComputeResource' ? offer.compute : undefined;
      const button = h('button', { type: 'button', className: 'accept', textContent: 'Accept' });
      button.onclick = async () => {
        for (const other of this.element.querySelectorAll('button')) other.disabled = true;
        button.textContent = 'Accepting…';
        try {
          await this.accept(offer);
          this.hide();
        } catch (failure) {
          error.textContent = (failure as Error).message;
          for (const other of this.element.querySelectorAll('button')) other.disabled = false;
          button.textContent = 'Accept';
        }
      };
      // The grounds get a full-width row of their own: the table is too narrow to unfold them in
      // a cell. A disclosure button (aria-expanded) stands in for <details>, which cannot span rows.
      const groundsId = `estimate-${offer.id}`;
      const grounds = offer.estimates
        ? h(
            'tr',
            { className: 'estimate-row', id: groundsId, hidden: true },
            h('td', { colSpan: 8 }, estimateBody(offer.estimates)),
          )
        : null;
      const disclose = grounds
        ? h('button', {
            type: 'button',
            className: 'disclose',
            textContent: 'how estimated',
            attrs: { 'aria-expanded': 'false', 'aria-controls': groundsId },
            onclick: () => {
              grounds.hidden = !grounds.hidden;
              disclose!.setAttribute('aria-expanded', String(!grounds.hidden));
            },
          })
        : null;
      const offerRow = h(
        'tr',
        { attrs: { 'data-offer-id': offer.id } },
        h('td', {}, index + 1),
        h('td', {}, preparing ? `${clock(preparing)} (${relative(preparing)})` : '—'),
        h(
          'td',
          { className: 'ready' },
          wait ?? (ready ? clock(ready) : '—'),
          disclose ? h('br') : null,
          disclose,
        ),
        h('td', {}, duration(offer.schedule?.available?.duration)),
        h('td', {}, range(compute?.cores)),
        h('td', {}, range(compute?.memory, ' GiB')),
        h('td', {}, expires ? `${clock(expires)} (${relative(expires)})` : '—'),
        h('td', {}, button),
      );
      return grounds ? [offerRow, grounds] : [offerRow];
    };
    this.element.replaceChildren(
      h('h2', {}, `Offers (${offerSet.offers.length})`),
      h(
        'table',
        { className: 'offers' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['#', 'preparation starts', 'ready', 'for', 'cores', 'memory', 'offer expires', ''].map((title) =>
              h('th', {}, title),
            ),
          ),
        ),
        h('tbody', {}, offerSet.offers.flatMap(row)),
      ),
      error,
      h('button', {
        type: 'button',
        className: 'secondary',
        textContent: 'Dismiss',
        onclick: () => this.hide(),
      }),
    );
    this.element.hidden = false;
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const { element, times } of waits) element.textContent = readyIn(times.median, times.bound, now);
    }, 1000);
  }

  private stopTicking() {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }

  hide() {
    this.stopTicking();
    this.element.hidden = true;
    this.element.replaceChildren();
  }
}
