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
    'Spring2024!', 'Berlin2024', '!!football!!', '12345678!', 'Pa$$w0rd2024',
    // Regression: a letter after the digits, or a 1 for an l, let these through.
    'Summer2023a', 'Welcome2024a', 'Password!1a', 'P@ssword1a', 'Dragon123a', 'iloveyou2a', 'Passw0rd1x', '1etmein2024', 'We1come2024!', 'He11o2024!',
    // Regression: a word inside, backwards, spaced out, or short with a year.
    'xpasswordx', '1godzilla1', 'poiuytrewq', 'enihsnus', 'p a s s w o r d', 'pass word 123', 'My-Password-1', 'TheDragon2024', 'Max2020!', '9monkey1239',
    // Regression: backwards, then dressed.
    'ytrewq123', 'uoyevoli1', 'drowssap!1'
  ]
  for (const password of dressed) t.ok(isGuessable(password), password)
})

t.test('repetitive and sequential characters', async t => {
  const runs = ['aaaaaaaa', '        ', '\u00a0'.repeat(8), 'abababab', 'aAaAaAaA', 'abcdefgh', 'ijklmnop', '98765432', 'ZYXWVUTS', 'abcabcabc', 'hunter2hunter2',
    // Regression: a character or two after the run let these through.
    'abcdefgh1', 'Abcdefgh!', 'aaaaaaaa1!', '1111111123']
  for (const password of runs) t.ok(isGuessable(password), JSON.stringify(password))
})

// Regression: the digits' row typed with shift, and dates, were documented as unknown and taken.
t.test('the digits\' row typed with shift, and dates', async t => {
  const shifted = ['!@#$%^&*', '!@#$%^&*()', ')(*&^%$#@!', '!@#$%^&*()_+', '!@#$%^&*a', '(*&^%$#@']
  for (const password of shifted) t.ok(isGuessable(password), password)
  const dates = ['19870512', '05121987', '12051987', '1987-05-12', '12/05/1987', '05.12.1987', '12.05.87', '87 05 12',
    // Regression: a day or month of one digit, and a date typed with shift.
    '5.12.1987', '1987.5.12', '12/5/87', '!(*&)%!@']
  for (const password of dates) t.ok(isGuessable(password), password)
  // Eight digits that are no day: not a date (13th month, 30 February, year 2400).
  for (const password of ['19871305', '30021987', '24001231', '9Ab!7xQ@']) t.notOk(isGuessable(password), password)
})

t.test('the account\'s own email, username and the email\'s local part, dressed up or not', async t => {
  const own = ['ada.lovelace@example.com', 'countess_ada']
  for (const password of ['ada.lovelace@example.com', 'Countess_Ada', 'countess_ada1!', 'ada.lovelace2024!', 'Ada.Lovelace', 'ada.lovelace1a', 'Countess_ada2024x']) t.ok(isGuessable(password, own), password)
  // Regression: a short name with a year passed once parts had to be two fifths of the password.
  for (const password of ['ada2024!', 'Ada2024!']) t.ok(isGuessable(password, ['ada@example.com', 'ada']), password)
  t.notOk(isGuessable('ada.lovelace writes programs for engines', own), 'a passphrase that holds the name, as a small part of it')
})

t.test('what is not guessable stays allowed', async t => {
  const fine = ['correct horse battery staple', 'kqzmxwpt', 'zx9#Lm2q', 'my dog is called rex', 'ilovemycat2024', 'мой пароль 🔐 très long', 'Tokyo-1964-Shinkansen',
    // Regression: a short word or number in a long password read as the password.
    '0451-9923-8817-6642-bear', '8473 6621 9045 1187 mike', '93!4810$72@5fun', '{73}{21}{99}{04}bob', '2718281828 love 3141592653', '10-24-2019-wedding', '197>}^&$[<-%', '3007<&/,]*@-']
  for (const password of fine) t.notOk(isGuessable(password, ['someone@example.com', 'someone']), password)
})

// Regression: its regular expressions rescanned a long run of symbols from each
// position, and NFKC made the run four times the length limit: 460 ms of the event loop.
t.test('a long run of symbols costs one pass', async t => {
  // Sixteen thousand characters once in compatibility form: seconds for a scan that starts over at each.
  const adversarial = 'a' + '\u2057'.repeat(4000) + 'b'
  const started = performance.now()
  isGuessable(adversarial, ['someone@example.com', 'someone'])
  const took = performance.now() - started
  t.ok(took < 1000, `${took.toFixed(1)} ms (a generous bound: a few ms here)`)
})
