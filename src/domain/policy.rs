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

    #[test]
    fn checks_1_and_2_the_caller_exists_and_is_active() {
        let target = user("t", "acc", Role::User);
        let blocked = User { blocked: true, ..user("c", "acc", Role::Owner) };
        let pending = User { pending_approval: true, ..blocked.clone() };
        let only_pending = User { pending_approval: true, ..user("c", "acc", Role::Owner) };
        for (what, caller, target_id, target, want) in [
            ("unknown caller", None, "t", Some(&target), Err(Refusal::CallerNotFound)),
            ("unknown caller, no target", None, "t", None, Err(Refusal::CallerNotFound)),
            ("blocked", Some(&blocked), "c", Some(&blocked), Err(Refusal::CallerBlocked)),
            ("blocked and pending", Some(&pending), "c", Some(&pending), Err(Refusal::CallerPendingApproval)),
            ("pending, no target", Some(&only_pending), "c", None, Err(Refusal::CallerPendingApproval)),
        ] {
            assert_eq!(may(caller, target_id, target), want, "{what}");
        }
    }

    /// Checks 3 to 6 for every role: its own token (as a user and as a service user), another user's, a service
    /// user's, a missing target's, a service user's in another account.
    #[test]
    fn checks_3_to_6_the_role_matrix() {
        let peer = user("p", "acc", Role::User);
        let svc = User { is_service_user: true, ..user("s", "acc", Role::User) };
        let stranger = User { account_id: "other".into(), ..svc.clone() };
        for role in [
            Role::Owner,
            Role::Admin,
            Role::NetworkAdmin,
            Role::User,
            Role::Auditor,
            Role::BillingAdmin,
            Role::Other("mystery".into()),
            Role::Other(String::new()),
        ] {
            let caller = user("c", "acc", role.clone());
            let on = |target: &User| may(Some(&caller), target.user_id.as_str(), Some(target));
            let allowed = matches!(role, Role::Owner | Role::Admin | Role::NetworkAdmin);
            let admin = matches!(role, Role::Owner | Role::Admin);
            // Check 3 refuses the other roles whatever the target, even their own, before check 4.
            let unless_denied = |want| if allowed { want } else { Err(Refusal::PermissionDenied) };
            assert_eq!(on(&caller), unless_denied(Ok(Grant::OwnToken)), "{role:?} own");
            let as_service_user = User { is_service_user: true, ..caller.clone() };
            assert_eq!(on(&as_service_user), unless_denied(Ok(Grant::OwnToken)), "{role:?} own, as a service user");
            assert_eq!(on(&peer), unless_denied(Err(Refusal::AdminRequired)), "{role:?} other user");
            let want = if admin { Ok(Grant::AdminOnServiceUser) } else { Err(Refusal::AdminRequired) };
            assert_eq!(on(&svc), unless_denied(want), "{role:?} service user");
            assert_eq!(may(Some(&caller), "gone", None), unless_denied(Err(Refusal::TargetNotFound)), "{role:?} gone");
            assert_eq!(on(&stranger), Err(Refusal::PermissionDenied), "{role:?} other account");
        }
    }
}
