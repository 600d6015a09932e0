// What a new password may not be: what guessers try first.
import t from 'tap'
import { isGuessable } from '../../../src/services/passwords/guessable.js'

t.test('common passwords whatever their case and width', async t => {
  for (const password of ['password', 'PASSWORD', 'a1b2c3d4e5', '\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24', 'iloveyou', '12345678']) t.ok(isGuessable(password), password)
})

// Regression: only the list's exact entries were refused, so these (from lists of breached
// passwords) were taken at registration, change and reset.
t.test('common passwords dressed up with digits, symbols and look-alikes', async t => {
  const dressed = [
    'Password@123', 'Welcome@123', 'Qwerty123!', 'Passw0rd!', 'Password1!', 'Admin@123', 'Summer2023!', 'Password123!',
    'Qwerty@123', 'P@ssword1', 'Pass@1234', 'Test@1234', 'Welcome@2023', 'Monkey123!', 'Dragon123!', 'Letmein123!',
    'Spring2024!', 'Berlin2024', '!!football!!', '12345678!', 'Pa$$w0rd2024'
  ]
  for (const password of dressed) t.ok(isGuessable(password), password)
})

t.test('repetitive and sequential characters', async t => {
  for (const password of ['aaaaaaaa', '        ', '\u00a0'.repeat(8), 'abababab', 'aAaAaAaA', 'abcdefgh', 'ijklmnop', '98765432', 'ZYXWVUTS']) t.ok(isGuessable(password), JSON.stringify(password))
})

t.test('the account\'s own email, username and the email\'s local part, dressed up or not', async t => {
  const own = ['ada.lovelace@example.com', 'countess_ada']
  for (const password of ['ada.lovelace@example.com', 'Countess_Ada', 'countess_ada1!', 'ada.lovelace2024!', 'Ada.Lovelace']) t.ok(isGuessable(password, own), password)
  t.notOk(isGuessable('ada.lovelace writes programs', own), 'a passphrase that holds the name')
})

t.test('what is not guessable stays allowed', async t => {
  const fine = ['correct horse battery staple', 'kqzmxwpt', 'zx9#Lm2q', 'Tr0ub4dor&3', 'my dog is called rex', 'ilovemycat2024', 'hunter2 hunter2', 'мой пароль 🔐 très long', 'Tokyo-1964-Olympics']
  for (const password of fine) t.notOk(isGuessable(password, ['someone@example.com', 'someone']), password)
})
