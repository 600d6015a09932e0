-- AlterEnum
ALTER TYPE "MailKind" ADD VALUE 'account_deleted';
