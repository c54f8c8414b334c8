// How numbers and dates look on screen, in one place so every page agrees.

const priceFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const latencyFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function formatPrice(price: number): string {
  return priceFormat.format(price);
}

export function formatLatency(ms: number): string {
  return `${latencyFormat.format(ms)} ms`;
}

export function formatDateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTimeFormat.format(date);
}

export function formatTime(date: Date): string {
  return timeFormat.format(date);
}

/** The price as the form shows it: the API's number with its two decimals kept ("12.50"). */
export function priceInputValue(price: number): string {
  return price.toFixed(2);
}
