//! NetBird's users and personal access tokens as the rules see them, the
//! rules themselves ([`policy`]: who may delete which token; [`rate_limit`]:
//! the per-PAT limit), and what the rules need from storage ([`store`]).
//! Storage maps its rows to these types and back; nothing here knows
//! DynamoDB.

pub mod policy;
pub mod rate_limit;
pub mod store;

use crate::ids::{AccountId, TokenId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    NetworkAdmin,
    User,
    Auditor,
    BillingAdmin,
    /// Any other text, or none: it grants nothing.
    Other(String),
}

impl Role {
    pub fn parse(role: &str) -> Self {
        match role {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "network_admin" => Role::NetworkAdmin,
            "user" => Role::User,
            "auditor" => Role::Auditor,
            "billing_admin" => Role::BillingAdmin,
            other => Role::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::NetworkAdmin => "network_admin",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::BillingAdmin => "billing_admin",
            Role::Other(text) => text,
        }
    }
}

/// A NetBird user (spec §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: UserId,
    pub account_id: AccountId,
    pub role: Role,
    pub is_service_user: bool,
    pub service_user_name: Option<String>,
    pub blocked: bool,
    pub pending_approval: bool,
}

/// A personal access token as NetBird stores it (spec §5): its hash, never
/// the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub user_id: UserId,
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub name: String,
    /// `base64_std(sha256(token))`.
    pub hashed_token: String,
    /// `None` when absent or not a number: such a token is refused.
    pub expires_at: Option<i64>,
    pub created_at: Option<i64>,
    pub created_by: Option<UserId>,
    pub last_used: Option<i64>,
    /// When the token's request bucket is next full, Unix ms (spec §9).
    pub rate_limited_until: Option<u64>,
}

impl PersonalAccessToken {
    /// Usable at `now` (Unix seconds): expiry present and in the future.
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|expires| expires > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_until_its_expiry_and_not_without_one() {
        let token = |expires_at| PersonalAccessToken {
            user_id: "u".into(),
            token_id: "t".into(),
            account_id: "a".into(),
            name: String::new(),
            hashed_token: String::new(),
            expires_at,
            created_at: None,
            created_by: None,
            last_used: None,
            rate_limited_until: None,
        };
        assert!(!token(None).is_live(0));
        assert!(token(Some(10)).is_live(9));
        assert!(!token(Some(10)).is_live(10));
    }

    #[test]
    fn roles_read_back_as_written() {
        for text in ["owner", "admin", "network_admin", "user", "auditor", "billing_admin", "mystery", ""] {
            assert_eq!(Role::parse(text).as_str(), text);
        }
        assert_eq!(Role::parse("Owner"), Role::Other("Owner".into()), "roles match exactly");
    }
}
