// Two rules for the checks a guesser could aim at besides a login's password (a session's current password or first code, a proof of a second factor): the turns each takes, the waits it keeps and the counts it adds to.
import type { LoginThrottle } from '../sessions/login-throttle.js'

/** The identifiers an account logs in with. */
export interface IdentifiedAccount {
  email: string
  username: string | null
}

/** The account whose factor is proven, with the identifiers it logs in with. */
export interface ProvingAccount extends IdentifiedAccount {
  id: string
}

/**
 * Checks, within a session, something its holder may be guessing at (the current password, or
 * an authenticator app's first code at its set-up) by `check`, whose `refusal` is null when it
 * held. NIST SP 800-63B 3.2.2 (rate limiting): the check runs in turn with the logins by the
 * account's address (see LoginThrottle.inTurn); it waits (429, nothing checked) while any of the
 * account's identifiers must, as a login by it would; and a refusal counts under the address, as
 * a failed login by it does, so a session, even a stolen one, guesses no faster than a login.
 * Never under the account's second-factor key (see secondFactorAttempt), which counts guesses at
 * the factors that guard its sign-ins. A `check` that throws counts nothing: it was refused
 * before anything was guessed.
 */
export async function addressAttempt<T extends { refusal: unknown }> (throttle: LoginThrottle, account: IdentifiedAccount, check: () => Promise<T>): Promise<T> {
  const keys = throttle.keys.account(account)
  const addressKey = keys[0] as string
  return await throttle.inTurn(addressKey, async () => {
    await throttle.assertMayTryAll(keys)
    const checked = await check()
    if (checked.refusal !== null) await throttle.recordFailure(addressKey)
    return checked
  })
}

/** How a factor is proven: a code and a recovery code can be guessed, a passkey's signature cannot. */
export type SecondFactorMethod = 'totp' | 'recovery_code' | 'webauthn'

/**
 * Checks a proof of the account's second factor (a TOTP code, a recovery code or a passkey, at
 * a login's second step or a reauthentication) by `check`, whose `refusal` is null when it held.
 * NIST SP 800-63B 3.2.2 (rate limiting): the check runs in turn with the other checks
 * of the identifier used (the login's, or the address for a session; see LoginThrottle.inTurn),
 * then with every other proof of the account's factors on this instance; it waits (429, nothing
 * checked) while that identifier or any of the account's must, and a code or a recovery code
 * while its second-factor key must too; a refusal counts under the identifier, and a code's or
 * a recovery code's under the second-factor key, which no password reset clears. That key
 * counts guesses at what can be guessed: a passkey's signature cannot be, so it neither waits
 * on the key nor adds to it: else whoever had the password, by burning codes, kept the owner
 * from finishing a sign-in with a passkey, the password reset, for up to a day. The turns are
 * taken in that order everywhere, the second-factor key's only inside one identifier's and
 * nothing inside it, so two requests never each hold the turn the other waits
 * for. The counts are read in the one statement a check reads them with anyway. Regression: a
 * reauthentication took the address's turn alone and counted under it alone, so in one wait
 * it and a second step begun by the username had a code checked each: 67 codes before the
 * lock, where 50 are allowed.
 */
export async function secondFactorAttempt<T extends { refusal: unknown }> (throttle: LoginThrottle, identifierKey: string, account: ProvingAccount, method: SecondFactorMethod, check: () => Promise<T>): Promise<T> {
  const secondFactorKey = throttle.keys.secondFactor(account.id)
  const guessable = method !== 'webauthn'
  return await throttle.inTurn(identifierKey, async () => await throttle.inTurn(secondFactorKey, async () => {
    await throttle.assertMayTryAll([identifierKey, ...throttle.keys.account(account), ...(guessable ? [secondFactorKey] : [])])
    const checked = await check()
    if (checked.refusal !== null) {
      await throttle.recordFailure(identifierKey)
      if (guessable) await throttle.recordFailure(secondFactorKey)
    }
    return checked
  }))
}
