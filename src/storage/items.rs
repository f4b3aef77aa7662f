//! The domain as DynamoDB items (spec §5): users and tokens as rows, and
//! the key cache's rows. Every attribute name is spelled here and nowhere
//! else: the store, `devstack` and the tests all read and write rows
//! through [`Row`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::auth::provider::cache::CachedKeySet;
use crate::domain::{PersonalAccessToken, Role, User};
use crate::ids::{TokenId, UserId};

pub type Item = HashMap<String, AttributeValue>;

/// Attribute names of both tables.
pub mod attr {
    pub const USER_ID: &str = "userId";
    pub const TOKEN_ID: &str = "tokenId";
    pub const ACCOUNT_ID: &str = "accountId";
    pub const NAME: &str = "name";
    pub const HASHED_TOKEN: &str = "hashedToken";
    pub const EXPIRES_AT: &str = "expiresAt";
    pub const CREATED_AT: &str = "createdAt";
    pub const CREATED_BY: &str = "createdBy";
    pub const LAST_USED: &str = "lastUsed";
    pub const RATE_LIMITED_UNTIL: &str = "rateLimitedUntil";
    pub const ROLE: &str = "role";
    pub const IS_SERVICE_USER: &str = "isServiceUser";
    pub const SERVICE_USER_NAME: &str = "serviceUserName";
    pub const BLOCKED: &str = "blocked";
    pub const PENDING_APPROVAL: &str = "pendingApproval";
    pub const SOURCE: &str = "source";
    pub const KEY_SET: &str = "keySet";
    pub const FETCHED_AT: &str = "fetchedAt";
    pub const MAX_AGE: &str = "maxAge";
}

/// The tokens table's index on `hashedToken`.
pub const HASHED_TOKEN_INDEX: &str = "hashedToken-index";

/// A row that lacks a required attribute or holds it with the wrong type.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the row's `{0}` is missing or not of its type")]
pub struct MalformedItem(pub &'static str);

/// A value of the domain stored as one item.
pub trait Row: Sized {
    fn from_item(item: &Item) -> Result<Self, MalformedItem>;
    fn to_item(&self) -> Item;
}

/// A row of the users table.
impl Row for User {
    /// Fails closed: a `blocked` or `pendingApproval` that is present but
    /// not a BOOL counts as set, a `role` that is not a string grants
    /// nothing, an `isServiceUser` that is not a BOOL is not set. Without a
    /// string `userId` and `accountId` the row is unusable.
    fn from_item(item: &Item) -> Result<Self, MalformedItem> {
        Ok(User {
            user_id: required_string_at(item, attr::USER_ID)?.into(),
            account_id: required_string_at(item, attr::ACCOUNT_ID)?.into(),
            role: string_at(item, attr::ROLE).map_or(Role::Other(String::new()), Role::parse),
            is_service_user: flag_at(item, attr::IS_SERVICE_USER, false),
            service_user_name: string_at(item, attr::SERVICE_USER_NAME).map(str::to_owned),
            blocked: flag_at(item, attr::BLOCKED, true),
            pending_approval: flag_at(item, attr::PENDING_APPROVAL, true),
        })
    }

    fn to_item(&self) -> Item {
        let mut item = Item::from([
            (attr::USER_ID.into(), string_value(self.user_id.as_str())),
            (attr::ACCOUNT_ID.into(), string_value(self.account_id.as_str())),
            (attr::ROLE.into(), string_value(self.role.as_str())),
            (attr::IS_SERVICE_USER.into(), AttributeValue::Bool(self.is_service_user)),
            (attr::BLOCKED.into(), AttributeValue::Bool(self.blocked)),
            (attr::PENDING_APPROVAL.into(), AttributeValue::Bool(self.pending_approval)),
        ]);
        if let Some(name) = &self.service_user_name {
            item.insert(attr::SERVICE_USER_NAME.into(), string_value(name));
        }
        item
    }
}

/// A row of the tokens table.
impl Row for PersonalAccessToken {
    fn from_item(item: &Item) -> Result<Self, MalformedItem> {
        Ok(PersonalAccessToken {
            user_id: required_string_at(item, attr::USER_ID)?.into(),
            token_id: required_string_at(item, attr::TOKEN_ID)?.into(),
            account_id: required_string_at(item, attr::ACCOUNT_ID)?.into(),
            name: string_at(item, attr::NAME).unwrap_or_default().to_owned(),
            hashed_token: required_string_at(item, attr::HASHED_TOKEN)?.to_owned(),
            expires_at: number_at(item, attr::EXPIRES_AT),
            created_at: number_at(item, attr::CREATED_AT),
            created_by: string_at(item, attr::CREATED_BY).map(UserId::from),
            last_used: number_at(item, attr::LAST_USED),
            rate_limited_until: number_at(item, attr::RATE_LIMITED_UNTIL).and_then(|n| u64::try_from(n).ok()),
        })
    }

    fn to_item(&self) -> Item {
        let mut item = Item::from([
            (attr::USER_ID.into(), string_value(self.user_id.as_str())),
            (attr::TOKEN_ID.into(), string_value(self.token_id.as_str())),
            (attr::ACCOUNT_ID.into(), string_value(self.account_id.as_str())),
            (attr::NAME.into(), string_value(&self.name)),
            (attr::HASHED_TOKEN.into(), string_value(&self.hashed_token)),
        ]);
        let numbers = [
            (attr::EXPIRES_AT, self.expires_at),
            (attr::CREATED_AT, self.created_at),
            (attr::LAST_USED, self.last_used),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                item.insert(name.into(), number_value(value));
            }
        }
        if let Some(by) = &self.created_by {
            item.insert(attr::CREATED_BY.into(), string_value(by.as_str()));
        }
        if let Some(full_at) = self.rate_limited_until {
            item.insert(attr::RATE_LIMITED_UNTIL.into(), number_value(full_at));
        }
        item
    }
}

/// A row of the key cache table: the identity provider's key set as one
/// instance fetched it, for every instance (keyed by its source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCacheItem {
    pub source: String,
    pub entry: CachedKeySet,
}

impl Row for KeyCacheItem {
    fn from_item(item: &Item) -> Result<Self, MalformedItem> {
        let number = |name| number_at(item, name).and_then(|n| u64::try_from(n).ok()).ok_or(MalformedItem(name));
        Ok(KeyCacheItem {
            source: required_string_at(item, attr::SOURCE)?.to_owned(),
            entry: CachedKeySet {
                document: required_string_at(item, attr::KEY_SET)?.to_owned(),
                fetched_at_ms: number(attr::FETCHED_AT)?,
                max_age_secs: number(attr::MAX_AGE)?,
            },
        })
    }

    fn to_item(&self) -> Item {
        Item::from([
            (attr::SOURCE.into(), string_value(&self.source)),
            (attr::KEY_SET.into(), string_value(&self.entry.document)),
            (attr::FETCHED_AT.into(), number_value(self.entry.fetched_at_ms)),
            (attr::MAX_AGE.into(), number_value(self.entry.max_age_secs)),
        ])
    }
}

/// The key of a key-cache row.
pub fn key_cache_key(source: &str) -> Item {
    Item::from([(attr::SOURCE.into(), string_value(source))])
}

/// The key of a users-table row.
pub fn user_key(user_id: &UserId) -> Item {
    Item::from([(attr::USER_ID.into(), string_value(user_id.as_str()))])
}

/// The key of a tokens-table row.
pub fn token_key(user_id: &UserId, token_id: &TokenId) -> Item {
    Item::from([
        (attr::USER_ID.into(), string_value(user_id.as_str())),
        (attr::TOKEN_ID.into(), string_value(token_id.as_str())),
    ])
}

pub fn string_value(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub fn number_value(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn string_at<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn required_string_at<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, MalformedItem> {
    string_at(item, name).ok_or(MalformedItem(name))
}

fn number_at(item: &Item, name: &str) -> Option<i64> {
    let text = item.get(name)?.as_n().ok()?;
    text.parse::<i64>().ok().or_else(|| text.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v as i64))
}

/// A BOOL flag: `false` when absent, `otherwise` when of another type.
fn flag_at(item: &Item, name: &str, otherwise: bool) -> bool {
    match item.get(name) {
        None => false,
        Some(AttributeValue::Bool(value)) => *value,
        Some(_) => otherwise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of `strings`, `extra` added.
    fn row(strings: &[(&str, &str)], extra: &[(&str, AttributeValue)]) -> Item {
        let strings = strings.iter().map(|(k, v)| (k.to_string(), string_value(v)));
        strings.chain(extra.iter().map(|(k, v)| (k.to_string(), v.clone()))).collect()
    }

    fn user_row(extra: &[(&str, AttributeValue)]) -> Item {
        row(&[(attr::USER_ID, "u"), (attr::ACCOUNT_ID, "a")], extra)
    }

    fn key_cache_item() -> KeyCacheItem {
        let entry =
            CachedKeySet { document: r#"{"keys":[]}"#.into(), fetched_at_ms: 1_700_000_000_123, max_age_secs: 3600 };
        KeyCacheItem { source: "jwks https://idp.example/keys".into(), entry }
    }

    #[test]
    fn users_default_to_least_privilege() {
        let user = User::from_item(&user_row(&[])).unwrap();
        assert_eq!(user.role, Role::Other(String::new()));
        assert!(!user.is_service_user && !user.blocked && !user.pending_approval);
    }

    #[test]
    fn flags_of_the_wrong_type_fail_closed() {
        let flags = [attr::BLOCKED, attr::PENDING_APPROVAL, attr::IS_SERVICE_USER, attr::ROLE];
        for odd in
            [string_value("true"), string_value("false"), AttributeValue::N("0".into()), AttributeValue::Null(true)]
        {
            let user = User::from_item(&user_row(&flags.map(|flag| (flag, odd.clone())))).unwrap();
            assert!(user.blocked && user.pending_approval, "{odd:?}");
            assert!(!user.is_service_user, "{odd:?}");
            assert!(matches!(user.role, Role::Other(_)), "{odd:?}");
        }
    }

    #[test]
    fn rows_without_string_ids_are_malformed() {
        let mut row = user_row(&[(attr::ACCOUNT_ID, AttributeValue::N("7".into()))]);
        assert_eq!(User::from_item(&row), Err(MalformedItem(attr::ACCOUNT_ID)));
        row.remove(attr::ACCOUNT_ID);
        assert_eq!(User::from_item(&row), Err(MalformedItem(attr::ACCOUNT_ID)));
        assert_eq!(User::from_item(&Item::new()), Err(MalformedItem(attr::USER_ID)));
    }

    #[test]
    fn items_round_trip() {
        let user = User {
            user_id: "u".into(),
            account_id: "a".into(),
            role: Role::parse("mystery"),
            is_service_user: true,
            service_user_name: Some("bot".into()),
            blocked: false,
            pending_approval: true,
        };
        assert_eq!(User::from_item(&user.to_item()), Ok(user));
        let token = PersonalAccessToken {
            user_id: "u".into(),
            token_id: "t".into(),
            account_id: "a".into(),
            name: "laptop".into(),
            hashed_token: "h".into(),
            expires_at: Some(1_700_000_000),
            created_at: Some(1),
            created_by: Some("u".into()),
            last_used: None,
            rate_limited_until: Some(1_700_000_000_123),
        };
        assert_eq!(PersonalAccessToken::from_item(&token.to_item()), Ok(token));
        assert_eq!(KeyCacheItem::from_item(&key_cache_item().to_item()), Ok(key_cache_item()));
    }

    #[test]
    fn key_cache_rows_of_the_wrong_shape_are_malformed() {
        let mut row = key_cache_item().to_item();
        row.insert(attr::FETCHED_AT.into(), AttributeValue::N("-5".into()));
        assert_eq!(KeyCacheItem::from_item(&row), Err(MalformedItem(attr::FETCHED_AT)));
        row.insert(attr::FETCHED_AT.into(), AttributeValue::N("5".into()));
        row.insert(attr::KEY_SET.into(), AttributeValue::N("5".into()));
        assert_eq!(KeyCacheItem::from_item(&row), Err(MalformedItem(attr::KEY_SET)));
    }

    #[test]
    fn token_expiry_reads_numbers_only() {
        let expiry = |value: Option<AttributeValue>| {
            let ids = [(attr::USER_ID, "u"), (attr::TOKEN_ID, "t"), (attr::ACCOUNT_ID, "a"), (attr::HASHED_TOKEN, "h")];
            let expires: Vec<_> = value.map(|v| (attr::EXPIRES_AT, v)).into_iter().collect();
            PersonalAccessToken::from_item(&row(&ids, &expires)).unwrap().expires_at
        };
        assert_eq!(expiry(None), None);
        assert_eq!(expiry(Some(AttributeValue::N("1700000000".into()))), Some(1_700_000_000));
        assert_eq!(expiry(Some(AttributeValue::N("1.7e9".into()))), Some(1_700_000_000));
        assert_eq!(expiry(Some(string_value("1700000000"))), None);
    }
}
