//! The demo account `make run` starts with, and the curl commands that
//! show it working.

use netbird_delete_token::auth::pat;
use netbird_delete_token::devkeys::DevKey;

use netbird_delete_token::domain::{Role, User};

use crate::{add_pat, create_tables, mint_jwt, put_user, Env, Result, DEFAULT_AUDIENCE, DEFAULT_ISSUER};

const ACCOUNT: &str = "demo-account";

/// Fixed, so the sample events in `events/` work against the local stack.
/// They exist nowhere else: never seed them into a real table.
pub const OWNER_SECRET: &str = "demoOwnerPatForLocalStackOnly1";
pub const USER_SECRET: &str = "demoUserPatForLocalStackOnly12";

pub async fn seed_and_print(env: &Env, key: &DevKey, base_url: &str) -> Result<()> {
    create_tables(env, "template.yaml").await?;
    let users = [
        ("demo-owner", "owner", None),
        ("demo-admin", "admin", None),
        ("demo-user", "user", None),
        ("demo-service", "user", Some("ci-bot")),
    ];
    for (id, role, service) in users {
        let user = User {
            user_id: id.into(),
            account_id: ACCOUNT.into(),
            role: Role::parse(role),
            is_service_user: service.is_some(),
            service_user_name: service.map(str::to_owned),
            blocked: false,
            pending_approval: false,
        };
        put_user(env, &user).await?;
    }
    const DAY: i64 = 86_400;
    let owner_pat = pat::from_secret(OWNER_SECRET).ok_or("bad demo secret")?;
    let user_pat = pat::from_secret(USER_SECRET).ok_or("bad demo secret")?;
    let random = || pat::generate().map_err(|_| "no random bytes".to_owned());
    add_pat(env, "demo-owner", "owner-laptop", "laptop", 30 * DAY, &owner_pat).await?;
    add_pat(env, "demo-user", "user-laptop", "laptop", 30 * DAY, &user_pat).await?;
    for (user, token_id, name) in [
        ("demo-owner", "owner-cli", "cli"),
        ("demo-owner", "owner-event-http", "http api event"),
        ("demo-owner", "owner-event-rest", "rest api event"),
        ("demo-owner", "owner-event-url", "function url event"),
        ("demo-admin", "admin-ci", "ci"),
        ("demo-service", "svc-deploy", "deploy"),
    ] {
        add_pat(env, user, token_id, name, 30 * DAY, &random()?).await?;
    }
    let admin_jwt = mint_jwt(key, "demo-admin", DEFAULT_ISSUER, DEFAULT_AUDIENCE, DAY / 2)?;

    let url = |user: &str, token: &str| format!("{base_url}/api/users/{user}/tokens/{token}");
    println!(
        r#"
Demo account {ACCOUNT}: demo-owner (owner), demo-admin (admin), demo-user (user),
demo-service (service user "ci-bot"). Development credentials, valid for this session:

  PAT of demo-owner:  {owner_pat}
  PAT of demo-user:   {user_pat}
  JWT of demo-admin:  {admin_jwt}

Try these (each deletes once; a second run answers 404):

# 200 {{}}: the owner deletes their own token "owner-cli" with their PAT
curl -i -X DELETE '{own}' -H 'Authorization: Token {owner_pat}'

# 200 {{}}: the admin deletes the service user's token with a JWT
curl -i -X DELETE '{svc}' -H 'Authorization: Bearer {admin_jwt}'

# 403 admin role required to perform this action: the admin may not delete the owner's token
curl -i -X DELETE '{other}' -H 'Authorization: Bearer {admin_jwt}'

# 403 permission denied: role "user" may not delete tokens, not even its own
curl -i -X DELETE '{user}' -H 'Authorization: Token {user_pat}'

# 401 no valid authentication provided
curl -i -X DELETE '{own}'
"#,
        own = url("demo-owner", "owner-cli"),
        svc = url("demo-service", "svc-deploy"),
        other = url("demo-owner", "owner-laptop"),
        user = url("demo-user", "user-laptop"),
    );
    Ok(())
}
