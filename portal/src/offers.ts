/** The offers of one offer set side by side (start, ready time, duration, resources, expiry), to accept one. */
import type { RequestOffersMutation } from '@srcnet/execution-step-client';
import { h } from './dom.ts';
import { clock, duration, range, relative, startOf } from './format.ts';

type OfferSet = RequestOffersMutation['requestOffers'];
type Offer = OfferSet['offers'][number];

export class OffersPanel {
  readonly element = h('section', { id: 'offers', className: 'panel', hidden: true });

  constructor(private readonly accept: (offer: Offer) => Promise<void>) {}

  show(offerSet: OfferSet) {
    const error = h('p', { className: 'general-error', attrs: { role: 'alert' } });
    const row = (offer: Offer, index: number) => {
      const preparing = startOf(offer.schedule?.preparing?.start);
      const ready = startOf(offer.schedule?.available?.start);
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
      return h(
        'tr',
        { attrs: { 'data-offer-id': offer.id } },
        h('td', {}, index + 1),
        h('td', {}, preparing ? `${clock(preparing)} (${relative(preparing)})` : '—'),
        h('td', {}, ready ? clock(ready) : '—'),
        h('td', {}, duration(offer.schedule?.available?.duration)),
        h('td', {}, range(compute?.cores)),
        h('td', {}, range(compute?.memory, ' GiB')),
        h('td', {}, expires ? `${clock(expires)} (${relative(expires)})` : '—'),
        h('td', {}, button),
      );
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
            ['#', 'preparation starts', 'ready at', 'for', 'cores', 'memory', 'offer expires', ''].map(
              (title) => h('th', {}, title),
            ),
          ),
        ),
        h('tbody', {}, offerSet.offers.map(row)),
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
  }

  hide() {
    this.element.hidden = true;
    this.element.replaceChildren();
  }
}
