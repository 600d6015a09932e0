// Roles and what each may do. A route asks for a permission, never for a role name, so a new
// role (a support agent who may read users but not change them) is one line here. A role with
// `users:write` can give any role, its own and admin included: it is an admin in all but name.
const permissionsByRole = {
  user: [],
  admin: ['users:read', 'users:write', 'sessions:revoke', 'settings:read', 'settings:write', 'audit:read']
} as const satisfies Record<string, readonly string[]>

export type Role = keyof typeof permissionsByRole
export type Permission = (typeof permissionsByRole)[Role][number]

export const roles = Object.keys(permissionsByRole) as Role[]

/** Whether `role` (as carried in the access token) grants `permission`; unknown roles grant nothing. */
export function hasPermission (role: string, permission: Permission): boolean {
  const granted: readonly string[] = Object.hasOwn(permissionsByRole, role) ? permissionsByRole[role as Role] : []
  return granted.includes(permission)
}

/** A role that grants any permission is an administrative one. */
export function isAdministrative (role: string): boolean {
  return Object.hasOwn(permissionsByRole, role) && permissionsByRole[role as Role].length > 0
}

/**
 * Whether moving an account from `current` to `role` waits for its address to be proven
 * (`emailVerifiedAt`): an administrative role is not given to an address nobody proved, since
 * anyone can register one. The admin API and `admin:promote` ask the same question.
 */
export function needsProvenAddress (current: string, role: string, emailVerifiedAt: Date | null): boolean {
  return role !== current && isAdministrative(role) && emailVerifiedAt === null
}
