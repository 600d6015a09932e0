-- A login opens its session only while the user's sign-out count is what it read as it began:
-- every remedy that ends all the user's sessions counts one, so a login under way across it
-- opens none after it. Instances of before neither count nor check; they ignore the column.

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "signOutGeneration" INTEGER NOT NULL DEFAULT 0;
