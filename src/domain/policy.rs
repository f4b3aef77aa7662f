//! NetBird's permission rules for deleting a token, in NetBird's order
//! (spec §3, checks 1 to 6). Pure: the caller and the target in, a verdict
//! out; check 7 is the conditional delete itself.

use crate::domain::{Role, User};
use crate::ids::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CallerNotFound,
    CallerBlocked,
    CallerPendingApproval,
    PermissionDenied,
    TargetNotFound,
    AdminRequired,
}

/// Why a delete is allowed (check 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    OwnToken,
    AdminOnServiceUser,
}

/// A delete the checks allow: the two users, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed<'a> {
    pub caller: &'a User,
    pub target: &'a User,
    pub grant: Grant,
}

/// `caller` and `target` are the users as stored (`None` when there is no
/// such user); `target_id` is the id the request names.
pub fn may_delete_token<'a>(
    caller: Option<&'a User>,
    target_id: &UserId,
    target: Option<&'a User>,
) -> Result<Allowed<'a>, Refusal> {
    // 1. The caller must exist.
    let caller = caller.ok_or(Refusal::CallerNotFound)?;
    // 2. …and be active.
    if caller.pending_approval {
        return Err(Refusal::CallerPendingApproval);
    }
    if caller.blocked {
        return Err(Refusal::CallerBlocked);
    }
    // 3. …in a role that may delete tokens at all.
    if !matches!(caller.role, Role::Owner | Role::Admin | Role::NetworkAdmin) {
        return Err(Refusal::PermissionDenied);
    }
    // 4. The target must exist.
    let target = target.ok_or(Refusal::TargetNotFound)?;
    // 5. …in the caller's account.
    if target.account_id != caller.account_id {
        return Err(Refusal::PermissionDenied);
    }
    // 6. Their own token, or an owner's or admin's on a service user.
    let grant = if caller.user_id == *target_id {
        Grant::OwnToken
    } else if matches!(caller.role, Role::Owner | Role::Admin) && target.is_service_user {
        Grant::AdminOnServiceUser
    } else {
        return Err(Refusal::AdminRequired);
    };
    Ok(Allowed { caller, target, grant })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(caller: Option<&User>, target_id: &str, target: Option<&User>) -> Result<Grant, Refusal> {
        may_delete_token(caller, &target_id.into(), target).map(|allowed| allowed.grant)
    }

    fn user(id: &str, account: &str, role: Role) -> User {
        User {
            user_id: id.into(),
            account_id: account.into(),
            role,
            is_service_user: false,
            service_user_name: None,
            blocked: false,
            pending_approval: false,
        }
    }

    fn service(id: &str, account: &str) -> User {
        User { is_service_user: true, ..user(id, account, Role::User) }
    }

    fn all_roles() -> [Role; 8] {
        [
            Role::Owner,
            Role::Admin,
            Role::NetworkAdmin,
            Role::User,
            Role::Auditor,
            Role::BillingAdmin,
            Role::Other("mystery".into()),
            Role::Other(String::new()),
        ]
    }

    #[test]
    fn check_1_unknown_caller() {
        let target = user("t", "acc", Role::User);
        assert_eq!(may(None, "t", Some(&target)), Err(Refusal::CallerNotFound));
        assert_eq!(may(None, "t", None), Err(Refusal::CallerNotFound));
    }

    #[test]
    fn check_2_blocked_or_pending_caller() {
        let blocked = User { blocked: true, ..user("c", "acc", Role::Owner) };
        let pending = User { blocked: true, pending_approval: true, ..user("c", "acc", Role::Owner) };
        let only_pending = User { pending_approval: true, ..user("c", "acc", Role::Owner) };
        assert_eq!(may(Some(&blocked), "c", Some(&blocked)), Err(Refusal::CallerBlocked));
        assert_eq!(may(Some(&pending), "c", Some(&pending)), Err(Refusal::CallerPendingApproval));
        assert_eq!(may(Some(&only_pending), "c", None), Err(Refusal::CallerPendingApproval));
    }

    #[test]
    fn check_3_roles_without_delete_even_on_own_tokens() {
        for role in [Role::User, Role::Auditor, Role::BillingAdmin, Role::Other("x".into())] {
            let caller = user("c", "acc", role.clone());
            assert_eq!(may(Some(&caller), "c", Some(&caller)), Err(Refusal::PermissionDenied), "{role:?}");
            // Check 3 comes before check 4.
            assert_eq!(may(Some(&caller), "x", None), Err(Refusal::PermissionDenied), "{role:?}");
        }
    }

    #[test]
    fn check_4_missing_target() {
        let caller = user("c", "acc", Role::Owner);
        assert_eq!(may(Some(&caller), "gone", None), Err(Refusal::TargetNotFound));
    }

    #[test]
    fn check_5_other_account_for_every_role() {
        for role in [Role::Owner, Role::Admin, Role::NetworkAdmin] {
            let caller = user("c", "acc", role.clone());
            let stranger = service("s", "other");
            assert_eq!(may(Some(&caller), "s", Some(&stranger)), Err(Refusal::PermissionDenied), "{role:?}");
        }
    }

    #[test]
    fn check_6_the_role_matrix() {
        let peer = user("p", "acc", Role::User);
        let svc = service("s", "acc");
        for role in all_roles() {
            let caller = user("c", "acc", role.clone());
            let on = |target: &User| may(Some(&caller), target.user_id.as_str(), Some(target));
            let allowed = matches!(role, Role::Owner | Role::Admin | Role::NetworkAdmin);
            let admin = matches!(role, Role::Owner | Role::Admin);
            let own = on(&caller);
            let other_user = on(&peer);
            let service_user = on(&svc);
            if allowed {
                assert_eq!(own, Ok(Grant::OwnToken), "{role:?} own");
                assert_eq!(other_user, Err(Refusal::AdminRequired), "{role:?} other user");
                let want = if admin { Ok(Grant::AdminOnServiceUser) } else { Err(Refusal::AdminRequired) };
                assert_eq!(service_user, want, "{role:?} service user");
            } else {
                for got in [own, other_user, service_user] {
                    assert_eq!(got, Err(Refusal::PermissionDenied), "{role:?}");
                }
            }
        }
    }

    #[test]
    fn a_service_user_that_is_owner_deletes_own() {
        let caller = User { is_service_user: true, ..user("c", "acc", Role::Admin) };
        assert_eq!(may(Some(&caller), "c", Some(&caller)), Ok(Grant::OwnToken));
    }
}
