// One rule for every check of a proof of an account's second factor: the turns it takes, the waits it keeps and the counts it adds to.
import type { LoginThrottle } from '../sessions/login-throttle.js'

/** The account whose factor is proven, with the identifiers it logs in with. */
export interface ProvingAccount {
  id: string
  email: string
  username: string | null
}

/**
 * Checks a proof of the account's second factor (a TOTP code, a recovery code or a passkey, at
 * a login's second step or a reauthentication) by `check`, whose `refusal` is null when it held.
 * NIST SP 800-63B 3.2.2 (rate limiting): the check runs in turn with the other checks
 * of the identifier used (the login's, or the address for a session; see LoginThrottle.inTurn),
 * then with every other proof of the account's factors on this instance; it waits (429, nothing
 * checked) while that identifier, any of the account's or its second-factor key must; and a
 * refusal counts under the identifier and the second-factor key, which no password reset
 * clears. The turns are taken in that order everywhere, the second-factor key's only inside one
 * identifier's and nothing inside it, so two requests never each hold the turn the other waits
 * for. The counts are read in the one statement a check reads them with anyway. Regression: a
 * reauthentication took the address's turn alone and counted under it alone, so in one wait
 * it and a second step begun by the username had a code checked each: 67 codes before the
 * lock, where 50 are allowed.
 */
export async function secondFactorAttempt<T extends { refusal: unknown }> (throttle: LoginThrottle, identifierKey: string, account: ProvingAccount, check: () => Promise<T>): Promise<T> {
  const secondFactorKey = throttle.keys.secondFactor(account.id)
  return await throttle.inTurn(identifierKey, async () => await throttle.inTurn(secondFactorKey, async () => {
    await throttle.assertMayTryAll([identifierKey, ...throttle.keys.account(account), secondFactorKey])
    const checked = await check()
    if (checked.refusal !== null) {
      await throttle.recordFailure(identifierKey)
      await throttle.recordFailure(secondFactorKey)
    }
    return checked
  }))
}
