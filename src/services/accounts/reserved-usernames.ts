// Usernames kept for the operator's own accounts: an ordinary account named "admin" or
// "support" would pass, beside the real one in the console or in a message to another user,
// for the service's staff.

// Compared as a reader sees them: without '.', '_' and '-' ("sys-admin", "Admin_"), and with
// the digits and letters that pass for others read as those ("adm1n", "r00t", "adrnin").
const lookAlikes: Record<string, string> = { 0: 'o', 1: 'i', 3: 'e', 4: 'a', 5: 's', 7: 't', 8: 'b', l: 'i' }
const withoutSeparators = (name: string) => name.replace(/[._-]/g, '')
const skeleton = (name: string) => withoutSeparators(name).replace(/rn/g, 'm').replace(/[0134578l]/g, c => lookAlikes[c] as string)

const reserved = new Set([
  'admin', 'administrator', 'root', 'superuser', 'sysadmin', 'system', 'operator', 'owner',
  'staff', 'moderator', 'support', 'help', 'helpdesk', 'security', 'official', 'service',
  'auth', 'login', 'logout', 'signin', 'signup', 'register', 'account', 'console', 'api', 'me',
  'webmaster', 'postmaster', 'hostmaster', 'abuse', 'noreply', 'mailerdaemon',
  'anonymous', 'nobody', 'everyone', 'null', 'undefined'
].map(skeleton))

// Words that pass for staff at either end of a name too ("admin1", "support-team", "theadmin"),
// digits aside, each letter or its look-alike ("theadm1n1"); inside one they are another word
// ("badminton"). A digit may be read either way, so the words are patterns, not skeletons.
const spelt: Record<string, string> = { a: '[a4]', b: '[b8]', e: '[e3]', i: '[i1l]', l: '[l1i]', m: '(?:m|r\\d*n)', o: '[o0]', s: '[s5]', t: '[t7]' }
const pattern = (word: string) => [...word].map(c => spelt[c] ?? c).join('\\d*')
const words = ['admin', 'moderator', 'support', 'official', 'helpdesk', 'security'].map(pattern).join('|')
const staffAtEitherEnd = new RegExp(`^\\d*(?:${words})|(?:${words})\\d*$`)

/** Whether `username` (canonical) is kept for the operator's accounts: `admin:create` and an admin's own change may take it; a registration and another user's change may not (409, as for a name in use). */
export function isReservedUsername (username: string): boolean {
  return reserved.has(skeleton(username)) || staffAtEitherEnd.test(withoutSeparators(username))
}
