-- AlterEnum: notices of the second factor's changes beside passkeys, kinds of their own so that
-- an older release (which knows none of them) leaves them to a newer instance.
ALTER TYPE "MailKind" ADD VALUE 'app_added';
ALTER TYPE "MailKind" ADD VALUE 'app_removed';
ALTER TYPE "MailKind" ADD VALUE 'last_passkey_removed';
