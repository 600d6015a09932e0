// The one form in which emails and usernames are stored and compared.

/** NFKC, lower case: look-alike spellings of one address or name are one. */
export function canonical (value: string): string {
  return value.normalize('NFKC').toLowerCase()
}
