//! `make explain`: would this credential delete this token, and if not,
//! why? The function's own code (`App::delete`) runs on a store that never
//! writes (`storage::read_only`), with the function's settings from the
//! environment, and prints each step; the credential comes on standard
//! input and is never printed. Exit 0 only when the function would answer
//! 200 (spec §11).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderValue;
use lambda_http::Body;
use netbird_delete_token::app::{App, PatUse, Step};
use netbird_delete_token::auth::reason::{Reason, Refused, Shown};
use netbird_delete_token::auth::{jwt::LEEWAY_SECS, keys::SUPPORTED};
use netbird_delete_token::clock::{unix_millis, unix_seconds};
use netbird_delete_token::config::{AuthConfig, Config, ConfigError};
use netbird_delete_token::deadline::Deadline;
use netbird_delete_token::domain::policy::{Grant, Refusal};
use netbird_delete_token::domain::store::Deletion;
use netbird_delete_token::domain::User;
use netbird_delete_token::ids::Target;
use netbird_delete_token::outcome::Outcome;
use netbird_delete_token::storage::{dynamo::DynamoStore, read_only::ReadOnly};

const USAGE: &str = "usage: explain --user <user id> --token <token id>, the credential (a JWT, a PAT, or a whole \
                     Authorization header value) on standard input";
/// The template's timeout less the function's answer margin.
const TIME: Duration = Duration::from_millis(5_500);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(user), Some(token)) = (arg("--user"), arg("--token")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut credential = String::new();
    if std::io::stdin().read_to_string(&mut credential).is_err() {
        eprintln!("the credential on standard input is not text\n{USAGE}");
        return ExitCode::from(2);
    }
    let Ok(header) = header_value(credential.trim()) else {
        eprintln!("the credential holds a character no HTTP header can carry (a line break?)");
        return ExitCode::from(2);
    };
    // The diagnostics the function would log (a failing call's detail).
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::WARN).without_time().init();
    let (config, app) = match app().await {
        Ok(built) => built,
        Err(err) => {
            eprintln!("invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let auth = config.auth.clone();
    let app = app.observed(Box::new(move |step| show(&step, &auth)));
    println!("Deleting token {token:?} of user {user:?} with the credential given:");
    let target = Target::new(Some(user), Some(token));
    let outcome = app.delete(header.as_ref(), target, &Deadline::after(TIME)).await.err().unwrap_or(Outcome::Deleted);
    match &outcome {
        Outcome::Unauthenticated(refused) => refusal(refused, &config.auth),
        Outcome::Refused { refusal, .. } => println!("  refused by {}", rule(*refusal)),
        Outcome::TooManyRequests => println!("  the PAT's bucket is empty (or its row is gone)"),
        Outcome::Internal(cause) => println!("  a failure the function's log names ({})", cause.as_str()),
        _ => {}
    }
    let (_, name, _) = outcome.row();
    let deleted = outcome == Outcome::Deleted;
    let response = outcome.into_response("explain");
    let body = if let Body::Text(text) = response.body() { text.as_str() } else { "" };
    println!("The function would answer {} {body} ({name}); explain changed nothing.", response.status().as_u16());
    if deleted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The function's settings, and its app on a store that never writes.
async fn app() -> Result<(Config, App<ReadOnly<DynamoStore>>), ConfigError> {
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let app = App::new(&config, Arc::new(ReadOnly(Arc::new(DynamoStore::connect(&config).await?))))?;
    Ok((config, app))
}

/// The header the function would see: the input as it is when it names
/// its scheme, else the credential under `Bearer` (where a PAT reads as
/// one too); an error when no header could carry it.
fn header_value(credential: &str) -> Result<Option<HeaderValue>, ()> {
    let value = match credential {
        "" => return Ok(None),
        c if c.contains(' ') => c.to_owned(),
        c => format!("Bearer {c}"),
    };
    HeaderValue::from_bytes(value.as_bytes()).map(Some).map_err(drop)
}

fn show(step: &Step<'_>, auth: &AuthConfig) {
    match step {
        Step::Credential(kind) => println!("  credential: a {kind}"),
        Step::Jwt(verified) => jwt_checks(None, &verified.shown, auth),
        Step::Pat(row) => {
            let expiry = row.expires_at.map_or("no expiry".into(), |at| relative(at.saturating_sub(unix_seconds())));
            println!(
                "  the index finds PAT {} of user {} in account {}; it expires {expiry}",
                row.token_id, row.user_id, row.account_id
            );
            if let Some(full_at) = row.rate_limited_until {
                let ms = i64::try_from(full_at).unwrap_or(i64::MAX).saturating_sub(unix_millis() as i64);
                println!("  its rate-limit bucket is full again {}", relative(ms / 1000));
            }
        }
        Step::PatUse(PatUse::Marked) => println!("  the row is still there (and its bucket admits the request)"),
        Step::PatUse(PatUse::Gone) => println!("  the row is gone: the PAT was deleted a moment ago"),
        Step::PatUse(PatUse::Limited) => println!("  the bucket takes no payment: over the rate limit"),
        Step::Users { caller, target } => {
            println!("  caller: {}", user(*caller));
            println!("  target: {}", user(*target));
        }
        Step::Allowed(Grant::OwnToken) => println!("  checks 1 to 6 pass: the caller's own token"),
        Step::Allowed(Grant::AdminOnServiceUser) => {
            println!("  checks 1 to 6 pass: an owner or admin deleting a service user's token")
        }
        Step::Deletion(Deletion::Deleted { name }) => {
            println!("  the token is there, in the caller's account ({name:?}): it would be deleted")
        }
        Step::Deletion(_) => println!("  check 7: no such token under that user in the caller's account"),
    }
}

fn user(user: Option<&User>) -> String {
    let Some(u) = user else { return "not in the users table".into() };
    let service = if u.is_service_user { ", a service user" } else { "" };
    format!(
        "{} in account {}, role {}{service}, blocked {}, pending approval {}",
        u.user_id,
        u.account_id,
        u.role.as_str(),
        u.blocked,
        u.pending_approval
    )
}

/// A refused credential: the JWT checks up to the one that failed, or the
/// reason with what the log shows.
fn refusal(refused: &Refused, auth: &AuthConfig) {
    if refused.reason.as_str().starts_with("jwt_") {
        return jwt_checks(Some(refused.reason), &refused.shown, auth);
    }
    let shown = refused.shown.to_json();
    let values = shown.as_object().filter(|values| !values.is_empty()).map(|_| format!(" {shown}"));
    println!("  refused: {}{}", refused.reason.as_str(), values.unwrap_or_default());
}

/// The JWT's checks in the verifier's order, each with the values compared:
/// passed up to `failed` (all of them without one).
fn jwt_checks(failed: Option<Reason>, shown: &Shown, auth: &AuthConfig) {
    let text = |value: &Option<String>| value.as_deref().unwrap_or("(none)").to_owned();
    let groups = auth.allowed_groups.as_ref();
    let checks: [(&[Reason], String); 9] = [
        (&[Reason::JwtMalformed], "three base64url parts of JSON, numeric times".into()),
        (&[Reason::JwtAlgorithmNotAccepted], format!("alg {} is one of {SUPPORTED:?}", text(&shown.alg))),
        (
            &[Reason::JwtUnknownKid, Reason::JwtNoKeyForAlgorithm],
            format!("kid {} is in the key set, with a key for that alg", text(&shown.kid)),
        ),
        (&[Reason::JwtBadSignature], "the signature verifies".into()),
        (
            &[Reason::JwtNoExpiry, Reason::JwtExpired, Reason::JwtNotYetValid],
            match shown.expired_seconds_ago {
                Some(ago) => format!("exp is not past (it passed {ago} s ago), nbf and iat are not ahead"),
                None => format!("exp is not past, nbf and iat are not ahead ({LEEWAY_SECS} s leeway)"),
            },
        ),
        (&[Reason::JwtWrongIssuer], format!("iss {} is AUTH_ISSUER {:?}", text(&shown.iss), auth.issuer)),
        (&[Reason::JwtWrongAudience], format!("aud {:?} names one of AUTH_AUDIENCE {:?}", shown.aud, auth.audiences)),
        (
            &[Reason::JwtNoUserId, Reason::JwtInvalidUserId],
            format!("claim {:?} (AUTH_USER_ID_CLAIM) holds a user id", auth.user_id_claim),
        ),
        (
            &[Reason::JwtNoGroups, Reason::JwtNoAllowedGroup],
            match groups {
                Some(g) => {
                    format!("claim {:?} names {:?}, one of AUTH_JWT_ALLOW_GROUPS {:?}", g.claim, shown.groups, g.groups)
                }
                None => "no allowed groups set: no group check".into(),
            },
        ),
    ];
    for (reasons, check) in checks {
        match failed.filter(|reason| reasons.contains(reason)) {
            Some(reason) => {
                println!("  FAIL {check}: {}", reason.as_str());
                return;
            }
            None => println!("  ok   {check}"),
        }
    }
}

fn rule(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::CallerNotFound => "check 1: the caller must be in the users table",
        Refusal::CallerBlocked => "check 2: the caller must not be blocked",
        Refusal::CallerPendingApproval => "check 2: the caller must not be pending approval",
        Refusal::PermissionDenied => {
            "check 3 or 5: the caller's role must delete tokens (owner, admin, network_admin), and the target be \
             in the caller's account"
        }
        Refusal::TargetNotFound => "check 4: the target user must exist",
        Refusal::AdminRequired => "check 6: the caller's own token, or an owner or admin on a service user's",
    }
}

/// `seconds` from now, as "in 3 d" or "2 h ago".
fn relative(seconds: i64) -> String {
    let size = seconds.unsigned_abs();
    let span = match size {
        0..=119 => format!("{size} s"),
        120..=7_199 => format!("{} min", size / 60),
        7_200..=172_799 => format!("{} h", size / 3600),
        _ => format!("{} d", size / 86_400),
    };
    if seconds < 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}
