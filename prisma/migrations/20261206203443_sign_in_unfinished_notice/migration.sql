-- AlterEnum: the notice of a sign-in that stopped at the second step, a kind of its own so that an
-- older release (which does not know it) leaves it to a newer instance.
ALTER TYPE "MailKind" ADD VALUE 'sign_in_unfinished';
