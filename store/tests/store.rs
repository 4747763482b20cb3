//! Integration tests for `sightline-store`, run with the same bodies against
//! SQLite (a temporary file database) and PostgreSQL (a fresh database per
//! test on a real server).
//!
//! PostgreSQL defaults to `postgres://postgres@127.0.0.1:5432/test` (trust
//! auth); override with `SIGHTLINE_TEST_POSTGRES_URL`. If the server is not
//! reachable the PostgreSQL tests fail (they are never skipped).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use sightline_store::{
    Backend, DEFAULT_ORGANIZATION, NewAuditEntry, NewUser, Role, Store, StoreError, hash_password, verify_password,
};
// `db` names are generated here from hex digits only, so formatting them into
// SQL is safe.
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const START_HINT: &str = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start \
     (or point SIGHTLINE_TEST_POSTGRES_URL at another server)";

/// What every test body receives.
struct Ctx {
    /// Connected store, migrations applied.
    store: Store,
    /// URL the store was opened with, for reconnecting or raw queries.
    url: String,
    /// Which backend this run targets.
    backend: Backend,
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests for each body.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::run_postgres(super::$name).await;
                }
            )*
        }
    };
}

backend_tests!(
    create_list_get_projects,
    invalid_project_names_rejected,
    ingest_key_lookup,
    secret_key_create_and_authenticate,
    secret_not_stored_in_clear,
    secret_key_for_missing_project_is_not_found,
    revoked_secret_no_longer_authenticates,
    ids_and_keys_distinct_across_projects,
    data_survives_reconnect,
    projects_belong_to_the_default_organization,
    users_log_in_with_sessions_that_end,
    members_get_roles_per_project_and_owners_every_project,
    audit_entries_chain_and_tampering_is_found,
    ingest_keys_are_added_limited_and_rotated,
    deleted_projects_take_their_keys_and_members_and_are_remembered,
    segments_are_saved_listed_and_deleted_per_project,
    dashboards_are_made_changed_and_deleted_per_project,
    alert_incidents_queue_their_deliveries_which_are_attempted_until_done,
);

async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("nested name").join("meta.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists(), "database file should have been created");
    body(Ctx { store, url, backend: Backend::Sqlite }).await;
    drop(dir);
}

/// Replaces the database name (URL path) of a postgres URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    let attempt = tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(admin_url)).await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            panic!("PostgreSQL test server not reachable at {admin_url}: {e}; {START_HINT}")
        }
        Err(_) => {
            panic!("PostgreSQL test server at {admin_url} did not answer within 10s; {START_HINT}")
        }
    }
}

async fn run_postgres<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("SIGHTLINE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let db = format!("sightline_test_{:016x}", rand::random::<u64>());
    let mut admin = admin_connection(&admin_url).await;
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {db}"))))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {db} via {admin_url}: {e}"));

    let url = with_database(&admin_url, &db);
    // Run the body on its own task so a failing assertion still lets us drop
    // the database before re-raising the panic.
    let outcome = match Store::connect(&url).await {
        Ok(store) => {
            assert_eq!(store.backend(), Backend::Postgres);
            let task_store = store.clone();
            let fut = body(Ctx { store: task_store, url, backend: Backend::Postgres });
            let res = tokio::spawn(fut).await;
            store.close().await;
            res.map_err(|e| match e.try_into_panic() {
                Ok(payload) => payload,
                Err(e) => Box::new(format!("test task failed: {e}")),
            })
        }
        Err(e) => Err(Box::new(format!("Store::connect({url}): {e}")) as _),
    };

    // Best-effort cleanup; WITH (FORCE) ends sessions a test may have leaked.
    if let Err(e) =
        admin.execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))).await
    {
        eprintln!("warning: could not drop test database {db}: {e}");
    }
    let _ = admin.close().await;

    if let Err(payload) = outcome {
        std::panic::resume_unwind(payload);
    }
}

/// A raw pool on the store's database, bypassing the store's API.
/// How the store keeps a token: lowercase hex SHA-256.
fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("raw connection")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn is_lower_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn assert_token(token: &str, prefix: &str, hex_len: usize) {
    let rest = token.strip_prefix(prefix).unwrap_or_else(|| panic!("{token:?} should start with {prefix:?}"));
    assert_eq!(rest.len(), hex_len, "{token:?} should have {hex_len} hex chars");
    assert!(is_lower_hex(rest), "{token:?} should be lowercase hex");
}

// ---------------------------------------------------------------------------
// Test bodies
// ---------------------------------------------------------------------------

async fn create_list_get_projects(ctx: Ctx) {
    let store = &ctx.store;
    assert!(store.list_projects().await.unwrap().is_empty());

    let before = now_ms();
    let a = store.create_project("  Marketing site  ").await.unwrap();
    let b = store.create_project("Docs").await.unwrap();
    let c = store.create_project("Docs").await.unwrap(); // names need not be unique
    let after = now_ms();

    assert_eq!(a.name, "Marketing site", "name is trimmed");
    assert_token(&a.id, "proj_", 20);
    assert_token(&a.ingest_key, "pk_", 32);
    assert!((before..=after).contains(&a.created_at), "created_at {} within [{before}, {after}]", a.created_at);

    let listed = store.list_projects().await.unwrap();
    assert_eq!(listed.len(), 3);
    let mut expected = vec![a.clone(), b.clone(), c.clone()];
    expected.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
    assert_eq!(listed, expected, "ordered by created_at, id");

    assert_eq!(store.get_project(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_project(&b.id).await.unwrap(), Some(b));
    assert_eq!(store.get_project("proj_00000000000000000000").await.unwrap(), None);
    assert_eq!(store.get_project("").await.unwrap(), None);

    // 200 multi-byte characters is the maximum and is accepted.
    let long = "é".repeat(200);
    let p = store.create_project(&long).await.unwrap();
    assert_eq!(store.get_project(&p.id).await.unwrap().unwrap().name, long);
}

async fn invalid_project_names_rejected(ctx: Ctx) {
    let store = &ctx.store;
    for bad in [String::new(), "   \t\n".to_owned(), "x".repeat(201)] {
        match store.create_project(&bad).await {
            Err(StoreError::Invalid(msg)) => {
                assert!(msg.contains("name"), "message should name the field: {msg}")
            }
            other => panic!("expected Invalid for {:?}, got {other:?}", bad),
        }
    }
    assert!(store.list_projects().await.unwrap().is_empty(), "nothing inserted");
}

async fn ingest_key_lookup(ctx: Ctx) {
    let store = &ctx.store;
    let a = store.create_project("A").await.unwrap();
    let b = store.create_project("B").await.unwrap();
    assert_eq!(store.project_by_ingest_key(&a.ingest_key).await.unwrap(), Some(a.clone()));
    assert_eq!(store.project_by_ingest_key(&b.ingest_key).await.unwrap(), Some(b));
    assert_eq!(store.project_by_ingest_key("pk_00000000000000000000000000000000").await.unwrap(), None);
    // Lookups are exact: no case folding, no prefix matching.
    assert_eq!(store.project_by_ingest_key(&a.ingest_key.to_uppercase()).await.unwrap(), None);
    assert_eq!(store.project_by_ingest_key(&a.ingest_key[..10]).await.unwrap(), None);
}

async fn secret_key_create_and_authenticate(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();

    let viewer = store.create_secret_key(&p.id, " dashboard ", Role::Viewer).await.unwrap();
    let admin = store.create_secret_key(&q.id, "ops", Role::Admin).await.unwrap();
    assert_token(&viewer.id, "key_", 16);
    assert_token(&viewer.secret, "sk_", 48);
    assert_eq!(viewer.project_id, p.id);
    assert_eq!(viewer.name, "dashboard");
    assert_eq!(viewer.role, Role::Viewer);
    let dbg = format!("{viewer:?}");
    assert!(!dbg.contains(&viewer.secret), "Debug leaks the secret: {dbg}");
    assert!(dbg.contains("***"), "{dbg}");

    assert_eq!(store.secret_key_last_used(&viewer.id).await.unwrap(), None);

    let before = now_ms();
    let grant = store.authenticate_secret(&viewer.secret).await.unwrap().expect("viewer secret authenticates");
    let after = now_ms();
    assert_eq!(grant.key_id, viewer.id);
    assert_eq!(grant.project_id, p.id);
    assert_eq!(grant.role, Role::Viewer);

    let used = store.secret_key_last_used(&viewer.id).await.unwrap().expect("last_used_at set after authentication");
    assert!((before..=after).contains(&used), "last_used_at {used} within [{before}, {after}]");
    assert_eq!(store.secret_key_last_used(&admin.id).await.unwrap(), None, "other keys untouched");

    let grant = store.authenticate_secret(&admin.secret).await.unwrap().expect("admin secret authenticates");
    assert_eq!(grant.key_id, admin.id);
    assert_eq!(grant.project_id, q.id);
    assert_eq!(grant.role, Role::Admin);

    // Unknown secrets, near misses and the key id itself do not authenticate.
    for wrong in [
        "sk_000000000000000000000000000000000000000000000000".to_owned(),
        viewer.secret.to_uppercase(),
        viewer.secret[..viewer.secret.len() - 1].to_owned(),
        format!("{} ", viewer.secret),
        viewer.id.clone(),
        String::new(),
    ] {
        assert_eq!(store.authenticate_secret(&wrong).await.unwrap(), None, "{wrong:?} must not authenticate");
    }

    match store.secret_key_last_used("key_0000000000000000").await {
        Err(StoreError::NotFound(msg)) => assert!(msg.contains("key_0000000000000000"), "{msg}"),
        other => panic!("expected NotFound, got {other:?}"),
    }

    let bad_name = store.create_secret_key(&p.id, "  ", Role::Viewer).await;
    assert!(matches!(&bad_name, Err(StoreError::Invalid(m)) if m.contains("name")), "{bad_name:?}");
}

async fn secret_not_stored_in_clear(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let key = store.create_secret_key(&p.id, "ci", Role::Admin).await.unwrap();
    let hex_part = key.secret.strip_prefix("sk_").unwrap().to_owned();

    let pool = raw_pool(&ctx.url).await;
    let rows = sqlx::query(
        "SELECT id, project_id, name, role, secret_hash, created_at, last_used_at, revoked_at \
         FROM secret_keys",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let stored_hash: String = row.try_get("secret_hash").unwrap();
    assert_eq!(stored_hash.len(), 64);
    assert!(is_lower_hex(&stored_hash), "{stored_hash}");
    assert_ne!(stored_hash, key.secret);

    // Neither the secret nor its random part appears in any text column.
    for col in ["id", "project_id", "name", "role", "secret_hash"] {
        let value: String = row.try_get(col).unwrap();
        assert!(
            !value.contains(&key.secret) && !value.contains(&hex_part),
            "column {col} contains the clear-text secret"
        );
    }
    let role: String = row.try_get("role").unwrap();
    assert_eq!(role, "admin");

    // And no row anywhere matches it via a LIKE search either.
    let hits: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM secret_keys \
         WHERE secret_hash LIKE $1 OR name LIKE $1 OR id LIKE $1",
    )
    .bind(format!("%{hex_part}%"))
    .fetch_one(&pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(hits, 0);
    pool.close().await;
}

async fn secret_key_for_missing_project_is_not_found(ctx: Ctx) {
    let store = &ctx.store;
    let missing = "proj_ffffffffffffffffffff";
    match store.create_secret_key(missing, "orphan", Role::Viewer).await {
        Err(e @ StoreError::NotFound(_)) => {
            let msg = e.to_string();
            assert!(msg.contains(missing), "message names the project: {msg}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let pool = raw_pool(&ctx.url).await;
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM secret_keys").fetch_one(&pool).await.unwrap().try_get("n").unwrap();
    assert_eq!(n, 0, "no orphan key row written");
    pool.close().await;
}

async fn revoked_secret_no_longer_authenticates(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let keep = store.create_secret_key(&p.id, "keep", Role::Viewer).await.unwrap();
    let gone = store.create_secret_key(&p.id, "gone", Role::Admin).await.unwrap();
    assert!(store.authenticate_secret(&gone.secret).await.unwrap().is_some());

    assert!(store.revoke_secret_key(&gone.id).await.unwrap());
    assert!(!store.revoke_secret_key(&gone.id).await.unwrap(), "second revoke reports already revoked");
    assert!(matches!(store.revoke_secret_key("key_0000000000000000").await, Err(StoreError::NotFound(_))));

    let last_used = store.secret_key_last_used(&gone.id).await.unwrap();
    assert_eq!(store.authenticate_secret(&gone.secret).await.unwrap(), None);
    assert_eq!(
        store.secret_key_last_used(&gone.id).await.unwrap(),
        last_used,
        "failed authentication does not touch last_used_at"
    );
    assert!(store.authenticate_secret(&keep.secret).await.unwrap().is_some());
}

async fn ids_and_keys_distinct_across_projects(ctx: Ctx) {
    let store = &ctx.store;
    let mut ids = HashSet::new();
    let mut ingest = HashSet::new();
    let mut key_ids = HashSet::new();
    let mut secrets = HashSet::new();
    for i in 0..8 {
        let p = store.create_project(&format!("project {i}")).await.unwrap();
        assert!(ids.insert(p.id.clone()), "duplicate project id {}", p.id);
        assert!(ingest.insert(p.ingest_key.clone()), "duplicate ingest key");
        for role in [Role::Viewer, Role::Admin] {
            let k = store.create_secret_key(&p.id, role.as_str(), role).await.unwrap();
            assert!(key_ids.insert(k.id.clone()), "duplicate key id {}", k.id);
            assert!(secrets.insert(k.secret.clone()), "duplicate secret");
            let grant = store.authenticate_secret(&k.secret).await.unwrap().unwrap();
            assert_eq!((grant.project_id, grant.role), (p.id.clone(), role));
        }
    }
    assert!(ids.is_disjoint(&ingest));
    assert_eq!(store.list_projects().await.unwrap().len(), 8);
}

async fn data_survives_reconnect(ctx: Ctx) {
    let Ctx { store, url, backend } = ctx;
    let p = store.create_project("Persistent").await.unwrap();
    let key = store.create_secret_key(&p.id, "ci", Role::Admin).await.unwrap();
    store.authenticate_secret(&key.secret).await.unwrap().unwrap();
    let used = store.secret_key_last_used(&key.id).await.unwrap();
    store.close().await;

    // Reconnecting re-runs the migrations, which must be a no-op.
    for _ in 0..2 {
        let reopened = Store::connect(&url).await.expect("reconnect");
        assert_eq!(reopened.backend(), backend);
        assert_eq!(reopened.list_projects().await.unwrap(), vec![p.clone()]);
        assert_eq!(reopened.project_by_ingest_key(&p.ingest_key).await.unwrap(), Some(p.clone()));
        assert_eq!(reopened.secret_key_last_used(&key.id).await.unwrap(), used);
        reopened.close().await;
    }

    let reopened = Store::connect(&url).await.expect("reconnect");
    let grant = reopened.authenticate_secret(&key.secret).await.unwrap().expect("secret still valid after reconnect");
    assert_eq!(grant.project_id, p.id);
    assert_eq!(grant.role, Role::Admin);

    // Foreign keys are enforced with ON DELETE CASCADE on both backends.
    let pool = raw_pool(&url).await;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA foreign_keys = ON").execute(&pool).await.unwrap();
    }
    sqlx::query("DELETE FROM projects WHERE id = $1").bind(&p.id).execute(&pool).await.unwrap();
    pool.close().await;
    assert_eq!(reopened.authenticate_secret(&key.secret).await.unwrap(), None);
    reopened.close().await;
}

// ---------------------------------------------------------------------------
// Backend-independent checks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_in_memory_works_and_is_private() {
    let a = Store::connect("sqlite::memory:").await.unwrap();
    let b = Store::connect("sqlite::memory:").await.unwrap();
    let p = a.create_project("mem").await.unwrap();
    // Several sequential operations must all see the same database.
    assert_eq!(a.get_project(&p.id).await.unwrap(), Some(p.clone()));
    let k = a.create_secret_key(&p.id, "k", Role::Viewer).await.unwrap();
    assert!(a.authenticate_secret(&k.secret).await.unwrap().is_some());
    assert!(b.list_projects().await.unwrap().is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn sqlite_uses_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wal.db").display());
    let store = Store::connect(&url).await.unwrap();
    let pool = raw_pool(&url).await;
    let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&pool).await.unwrap().try_get(0).unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn unsupported_url_is_rejected() {
    for url in ["mysql://root:hunter2@localhost/db", "file.db", ""] {
        match Store::connect(url).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => {
                let msg = e.to_string();
                assert!(!msg.contains("hunter2"), "password leaked: {msg}");
                assert!(msg.contains("postgres://"), "message lists options: {msg}");
            }
            Err(other) => panic!("{url:?}: expected UnsupportedUrl, got {other:?}"),
            Ok(_) => panic!("{url:?}: expected UnsupportedUrl, got a store"),
        }
    }
}

#[test]
fn role_names_are_lowercase() {
    assert_eq!(Role::Viewer.as_str(), "viewer");
    assert_eq!(Role::Admin.to_string(), "admin");
    assert_eq!(Role::parse("admin"), Some(Role::Admin));
    assert_eq!(Role::parse("root"), None);
}

#[test]
fn with_database_replaces_path() {
    assert_eq!(with_database("postgres://postgres@127.0.0.1:5432/test", "x"), "postgres://postgres@127.0.0.1:5432/x");
    assert_eq!(with_database("postgres://u:p@h/test?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
}

async fn projects_belong_to_the_default_organization(ctx: Ctx) {
    let project = ctx.store.create_project("P").await.unwrap();
    assert_eq!(project.organization_id, DEFAULT_ORGANIZATION);
    assert_eq!(ctx.store.get_project(&project.id).await.unwrap().unwrap().organization_id, DEFAULT_ORGANIZATION);
}

fn new_user<'a>(email: &'a str, hash: &'a str, is_owner: bool) -> NewUser<'a> {
    NewUser { email, name: "Ada", password_hash: hash, is_owner, must_change_password: false }
}

async fn users_log_in_with_sessions_that_end(ctx: Ctx) {
    let store = &ctx.store;
    assert_eq!(store.user_count().await.unwrap(), 0);
    let hash = hash_password("a long enough password").unwrap();
    let user = store.create_user(new_user(" Ada@Example.com ", &hash, false)).await.unwrap();
    assert_eq!(user.email, "ada@example.com");
    assert_token(&user.id, "usr_", 16);
    assert_eq!(store.user_count().await.unwrap(), 1);
    match store.create_user(new_user("ADA@example.com", &hash, false)).await {
        Err(StoreError::Invalid(msg)) => assert!(msg.contains("email"), "{msg}"),
        other => panic!("a taken email must be refused, got {other:?}"),
    }
    let (found, stored_hash) = store.user_for_login("ada@EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!(found, user);
    assert!(verify_password(Some(&stored_hash), "a long enough password"));
    assert!(store.user_for_login("nobody@example.com").await.unwrap().is_none());

    // The token is stored as its hash only.
    let session = store.open_session(&user.id).await.unwrap();
    assert_token(&session.token, "ses_", 64);
    let pool = raw_pool(&ctx.url).await;
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("token_hash").unwrap())
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&session.token[4..]), "the clear token is not stored");
    let live = store.authenticate_session(&session.token).await.unwrap().expect("a live session");
    assert_eq!(live.user, user);
    assert!(live.roles.is_empty(), "no memberships yet");
    assert!(store.authenticate_session("ses_0000").await.unwrap().is_none());

    // Logout ends it.
    assert!(store.revoke_session(&live.session_id).await.unwrap());
    assert!(store.authenticate_session(&session.token).await.unwrap().is_none());
    assert!(!store.revoke_session(&live.session_id).await.unwrap(), "already ended");

    // So do the idle timeout and the lifetime.
    let idle = store.open_session(&user.id).await.unwrap();
    let expired = store.open_session(&user.id).await.unwrap();
    let kept = store.open_session(&user.id).await.unwrap();
    let long_ago = now_ms() - 31 * 60_000;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(long_ago)
        .bind(sha256_hex(&idle.token))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
        .bind(now_ms() - 1)
        .bind(sha256_hex(&expired.token))
        .execute(&pool)
        .await
        .unwrap();
    assert!(store.authenticate_session(&idle.token).await.unwrap().is_none(), "idle for 31 minutes");
    assert!(store.authenticate_session(&expired.token).await.unwrap().is_none(), "past its lifetime");
    let kept_session = store.authenticate_session(&kept.token).await.unwrap().unwrap();

    // A new password ends every other session.
    let other = store.open_session(&user.id).await.unwrap();
    let new_hash = hash_password("another long password").unwrap();
    store.set_password(&user.id, &new_hash, Some(&kept_session.session_id)).await.unwrap();
    assert!(store.authenticate_session(&other.token).await.unwrap().is_none());
    assert!(store.authenticate_session(&kept.token).await.unwrap().is_some());
    pool.close().await;
}

async fn members_get_roles_per_project_and_owners_every_project(ctx: Ctx) {
    let store = &ctx.store;
    let hash = hash_password("a long enough password").unwrap();
    let viewer = store.create_user(new_user("v@example.com", &hash, false)).await.unwrap();
    let owner = store.create_user(new_user("o@example.com", &hash, true)).await.unwrap();
    let a = store.create_project("A").await.unwrap();
    let b = store.create_project("B").await.unwrap();
    store.set_member(&a.id, &viewer.id, Role::Viewer).await.unwrap();
    let session = store.open_session(&viewer.id).await.unwrap();
    let roles = store.authenticate_session(&session.token).await.unwrap().unwrap().roles;
    assert_eq!(roles, vec![(a.id.clone(), Role::Viewer)], "project A only");
    store.set_member(&a.id, &viewer.id, Role::Admin).await.unwrap();
    let roles = store.authenticate_session(&session.token).await.unwrap().unwrap().roles;
    assert_eq!(roles, vec![(a.id.clone(), Role::Admin)], "the role changed in place");
    let members = store.members(&a.id).await.unwrap();
    assert_eq!(members, vec![(viewer.clone(), Role::Admin)]);
    assert!(matches!(store.set_member(&b.id, "usr_missing", Role::Viewer).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_member("proj_missing", &viewer.id, Role::Viewer).await, Err(StoreError::NotFound(_))));

    let owner_session = store.open_session(&owner.id).await.unwrap();
    let mut owner_roles = store.authenticate_session(&owner_session.token).await.unwrap().unwrap().roles;
    owner_roles.sort();
    let mut every = vec![(a.id.clone(), Role::Admin), (b.id.clone(), Role::Admin)];
    every.sort();
    assert_eq!(owner_roles, every, "an owner administers every project of the organization");

    assert!(store.remove_member(&a.id, &viewer.id).await.unwrap());
    assert!(store.authenticate_session(&session.token).await.unwrap().unwrap().roles.is_empty());
    assert!(!store.remove_member(&a.id, &viewer.id).await.unwrap());
}

fn audit<'a>(action: &'a str, project: Option<&'a str>) -> NewAuditEntry<'a> {
    NewAuditEntry {
        actor: "usr_1",
        action,
        object: "project:p",
        project_id: project,
        source_ip: "192.0.2.1",
        details: r#"{"name":"shop"}"#,
    }
}

async fn audit_entries_chain_and_tampering_is_found(ctx: Ctx) {
    let store = &ctx.store;
    let check = store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.broken_at, check.head_hash), (0, None, None));
    let mut appended = Vec::new();
    for i in 0..5 {
        let project = if i % 2 == 0 { Some("proj_a") } else { Some("proj_b") };
        let action = format!("action{i}");
        appended.push(store.append_audit(audit(&action, project)).await.unwrap());
    }
    // Concurrent appends each get their own place in the chain.
    let concurrent = futures_join(store).await;
    assert_eq!(concurrent, 4);
    assert_eq!(appended[0].seq, 1);
    assert_eq!(appended[1].prev_hash, appended[0].hash);
    let check = store.verify_audit_chain().await.unwrap();
    assert_eq!((check.entries, check.broken_at), (9, None));

    let newest = store.audit_entries(None, None, 3).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![9, 8, 7], "newest first");
    let older = store.audit_entries(None, Some(7), 100).await.unwrap();
    assert_eq!(older.len(), 6);
    let of_a = store.audit_entries(Some(&["proj_a".to_owned()]), None, 100).await.unwrap();
    assert_eq!(of_a.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["action4", "action2", "action0"]);

    // Whoever edits a row in the database breaks the chain at that row.
    let pool = raw_pool(&ctx.url).await;
    sqlx::query("UPDATE audit_log SET actor = 'usr_2' WHERE seq = 3").execute(&pool).await.unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().broken_at, Some(3));
    sqlx::query("UPDATE audit_log SET actor = 'usr_1' WHERE seq = 3").execute(&pool).await.unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().broken_at, None, "restored");
    // Or removes one.
    sqlx::query("DELETE FROM audit_log WHERE seq = 4").execute(&pool).await.unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().broken_at, Some(4));
    pool.close().await;
}

/// Appends four entries at once; returns how many made it.
async fn futures_join(store: &Store) -> usize {
    let appends = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let action = format!("concurrent{i}");
            store.append_audit(audit(&action, None)).await.map(|entry| entry.seq)
        })
    });
    let mut ok = 0;
    for append in appends.collect::<Vec<_>>() {
        append.await.unwrap().unwrap();
        ok += 1;
    }
    ok
}

async fn ingest_keys_are_added_limited_and_rotated(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();
    let first = store.ingest_keys(&p.id).await.unwrap();
    assert_eq!(first.len(), 1, "a project starts with one key");
    assert_eq!(first[0].key, p.ingest_key);
    let second = store.create_ingest_key(&p.id, "landing pages", Some(50)).await.unwrap();
    assert_token(&second.id, "ik_", 16);
    assert_token(&second.key, "pk_", 32);
    let grant = store.ingest_grant(&second.key).await.unwrap().unwrap();
    assert_eq!(
        (grant.project.id.as_str(), grant.rate_limit_per_s, grant.key_id.as_str()),
        (p.id.as_str(), Some(50), second.id.as_str())
    );
    assert!(
        matches!(store.create_ingest_key(&p.id, "x", Some(0)).await, Err(StoreError::Invalid(m)) if m.contains("rate_limit_per_s"))
    );
    assert!(matches!(store.create_ingest_key("proj_missing", "x", None).await, Err(StoreError::NotFound(_))));

    // Rotation: the old key stops working, the project shows the next one.
    let revoked = store.revoke_ingest_key(&p.id, &first[0].id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(store.ingest_grant(&p.ingest_key).await.unwrap().is_none());
    assert_eq!(store.get_project(&p.id).await.unwrap().unwrap().ingest_key, second.key);
    match store.revoke_ingest_key(&p.id, &second.id).await {
        Err(StoreError::Invalid(msg)) => assert!(msg.contains("last active"), "{msg}"),
        other => panic!("the last key must stay, got {other:?}"),
    }
    // A key id of project P is nothing in project Q.
    assert!(matches!(store.revoke_ingest_key(&q.id, &second.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_ingest_rate_limit(&q.id, &second.id, None).await, Err(StoreError::NotFound(_))));
    store.set_ingest_rate_limit(&p.id, &second.id, None).await.unwrap();
    assert_eq!(store.ingest_grant(&second.key).await.unwrap().unwrap().rate_limit_per_s, None);
    store.touch_ingest_key(&second.id, 1234).await.unwrap();
    let keys = store.ingest_keys(&p.id).await.unwrap();
    let last_used = |id: &str| keys.iter().find(|k| k.id == id).unwrap().last_used_at;
    assert_eq!((last_used(&first[0].id), last_used(&second.id)), (None, Some(1234)));

    let secret = store.create_secret_key(&p.id, "ci", Role::Viewer).await.unwrap();
    let listed = store.secret_keys(&p.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].role), (secret.id.as_str(), Role::Viewer));
    assert_eq!(store.secret_key_project(&secret.id).await.unwrap(), Some(p.id.clone()));
    assert!(store.secret_keys(&q.id).await.unwrap().is_empty());
}

async fn deleted_projects_take_their_keys_and_members_and_are_remembered(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();
    let secret = store.create_secret_key(&p.id, "ci", Role::Admin).await.unwrap();
    let hash = hash_password("a long enough password").unwrap();
    let user = store.create_user(new_user("m@example.com", &hash, false)).await.unwrap();
    store.set_member(&p.id, &user.id, Role::Viewer).await.unwrap();
    assert!(store.delete_project(&p.id).await.unwrap());
    assert!(!store.delete_project(&p.id).await.unwrap(), "gone already");
    assert_eq!(store.get_project(&p.id).await.unwrap(), None);
    assert!(store.ingest_grant(&p.ingest_key).await.unwrap().is_none());
    assert!(store.authenticate_secret(&secret.secret).await.unwrap().is_none());
    assert!(store.members(&p.id).await.unwrap().is_empty());
    assert_eq!(store.deleted_projects().await.unwrap(), vec![p.id.clone()]);
    assert!(store.get_project(&q.id).await.unwrap().is_some(), "others stay");
    assert!(store.get_user(&user.id).await.unwrap().is_some(), "users stay");
}

async fn segments_are_saved_listed_and_deleted_per_project(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();
    let filters = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mobile = store
        .create_segment(&p.id, "Mobile cart", filters(&[("device", "mobile"), ("path", "/cart")]), "usr_1")
        .await
        .unwrap();
    assert_token(&mobile.id, "seg_", 16);
    store.create_segment(&p.id, "Pro", filters(&[("prop.plan", "pro")]), "usr_1").await.unwrap();
    let listed = store.segments(&p.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&mobile), "saved as it was made: {listed:?}");
    assert!(store.segments(&q.id).await.unwrap().is_empty());
    for bad in [filters(&[]), filters(&[("colour", "red")]), filters(&[("prop.", "x")])] {
        match store.create_segment(&p.id, "x", bad, "usr_1").await {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains("filters"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    assert!(!store.delete_segment(&q.id, &mobile.id).await.unwrap(), "not through another project");
    assert!(store.delete_segment(&p.id, &mobile.id).await.unwrap());
    assert_eq!(store.segments(&p.id).await.unwrap().len(), 1);
}

async fn dashboards_are_made_changed_and_deleted_per_project(ctx: Ctx) {
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();
    let widgets = serde_json::json!([{ "id": "w1", "x": 0, "y": 0, "w": 4, "h": 2 }]);
    let made = store.create_dashboard(&p.id, " Launch ", widgets.clone(), "usr_1").await.unwrap();
    assert_token(&made.id, "dsh_", 16);
    assert_eq!((made.name.as_str(), &made.widgets), ("Launch", &widgets));
    assert_eq!(store.dashboards(&p.id).await.unwrap(), vec![made.clone()]);
    assert!(store.dashboards(&q.id).await.unwrap().is_empty());
    assert_eq!(store.dashboard(&q.id, &made.id).await.unwrap(), None, "not through another project");

    let moved = serde_json::json!([{ "id": "w1", "x": 4, "y": 1, "w": 8, "h": 3 }]);
    assert_eq!(store.update_dashboard(&q.id, &made.id, "X", moved.clone(), "usr_2").await.unwrap(), None);
    let changed = store.update_dashboard(&p.id, &made.id, "Launch day", moved.clone(), "usr_2").await.unwrap().unwrap();
    assert_eq!((changed.name.as_str(), &changed.widgets, changed.updated_by.as_str()), ("Launch day", &moved, "usr_2"));
    assert_eq!((changed.created_by.as_str(), changed.created_at), ("usr_1", made.created_at));
    assert_eq!(store.dashboard(&p.id, &made.id).await.unwrap(), Some(changed));

    let huge = serde_json::Value::Array(vec![serde_json::json!("x".repeat(1024)); 70]);
    for (name, bad) in [("x", serde_json::json!({})), ("x", huge), (" ", serde_json::json!([]))] {
        match store.create_dashboard(&p.id, name, bad, "usr_1").await {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains("widgets") || msg.contains("name"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(
        store.create_dashboard("prj_missing", "x", serde_json::json!([]), "u").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!store.delete_dashboard(&q.id, &made.id).await.unwrap());
    assert!(store.delete_dashboard(&p.id, &made.id).await.unwrap());
    assert!(store.dashboards(&p.id).await.unwrap().is_empty());
}

async fn alert_incidents_queue_their_deliveries_which_are_attempted_until_done(ctx: Ctx) {
    use sightline_store::{DeliveryStatus, NewDelivery};
    let store = &ctx.store;
    let p = store.create_project("P").await.unwrap();
    let q = store.create_project("Q").await.unwrap();
    let config = serde_json::json!({ "url": "http://127.0.0.1:9/hook", "secret": "s3cret" });
    let hook = store.create_channel(&p.id, "Ops hook", "webhook", &config, 30, "usr_1").await.unwrap();
    assert_token(&hook.id, "ch_", 16);
    assert_eq!(store.channels(&p.id).await.unwrap(), vec![hook.clone()]);
    assert_eq!(store.channel(&q.id, &hook.id).await.unwrap(), None, "not through another project");
    let definition = serde_json::json!({ "metric": "error_count", "comparison": "gt", "threshold": 5, "window_s": 60 });
    let rule =
        store.create_rule(&p.id, "Errors", &definition, std::slice::from_ref(&hook.id), false, "usr_1").await.unwrap();
    assert_token(&rule.id, "al_", 16);
    assert_eq!(store.all_rules().await.unwrap(), vec![rule.clone()]);
    let muted = store.update_rule(&p.id, &rule.id, "Errors!", &definition, &[], true).await.unwrap().unwrap();
    assert!(muted.muted && muted.channels.is_empty() && muted.name == "Errors!");
    assert_eq!(store.update_rule(&q.id, &rule.id, "x", &definition, &[], false).await.unwrap(), None);
    let quiet = store.create_rule(&q.id, "Quiet", &definition, &[], true, "usr_1").await.unwrap();
    assert_eq!(store.rules(&q.id).await.unwrap(), vec![quiet.clone()]);
    assert!(quiet.muted, "made muted");
    assert!(store.delete_rule(&q.id, &quiet.id).await.unwrap());

    // Firing: the incident and its delivery at once.
    let firing =
        NewDelivery { channel_id: hook.id.clone(), state: "firing".into(), payload: serde_json::json!({ "n": 1 }) };
    let incident_id = Store::new_incident_id();
    let incident = store.open_incident(&rule, &incident_id, 1_000, 7.0, std::slice::from_ref(&firing)).await.unwrap();
    assert_token(&incident.id, "inc_", 16);
    assert_eq!(store.open_incidents().await.unwrap(), vec![incident.clone()]);
    let due = store.due_deliveries(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let delivery = &due[0];
    assert_eq!(
        (delivery.state.as_str(), delivery.status.clone(), delivery.attempts),
        ("firing", DeliveryStatus::Pending, 0)
    );
    assert_eq!(delivery.incident_id.as_deref(), Some(incident.id.as_str()));
    assert_eq!(store.due_deliveries(delivery.next_attempt_at - 1, 10).await.unwrap(), vec![], "not due yet");
    // A failed attempt waits; a later one delivers.
    let retry_at = delivery.next_attempt_at + 5_000;
    store.record_attempt(&delivery.id, DeliveryStatus::Pending, Some(503), Some("busy"), retry_at).await.unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(retry_at));
    assert!(store.due_deliveries(retry_at - 1, 10).await.unwrap().is_empty());
    store.record_attempt(&delivery.id, DeliveryStatus::Delivered, Some(200), None, retry_at).await.unwrap();
    let done = store.delivery(&p.id, &delivery.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.attempts, done.last_status), (DeliveryStatus::Delivered, 2, Some(200)));
    assert!(done.delivered_at.is_some());
    assert_eq!(store.next_delivery_due().await.unwrap(), None);

    // Resolving: once.
    let resolved = NewDelivery { state: "resolved".into(), ..firing };
    assert!(store.resolve_incident(&incident, 2_000, 1.0, std::slice::from_ref(&resolved)).await.unwrap());
    assert!(!store.resolve_incident(&incident, 3_000, 0.0, std::slice::from_ref(&resolved)).await.unwrap());
    assert!(store.open_incidents().await.unwrap().is_empty());
    let history = store.rule_deliveries(&p.id, &rule.id, 10).await.unwrap();
    assert_eq!(history.iter().map(|d| d.state.as_str()).collect::<Vec<_>>(), ["resolved", "firing"]);
    let incidents = store.incidents(&rule.id, 10).await.unwrap();
    assert_eq!((incidents[0].resolved_at, incidents[0].resolved_value), (Some(2_000), Some(1.0)));

    store.remember_issue_ref(&incident.id, &hook.id, "OPS-1").await.unwrap();
    store.remember_issue_ref(&incident.id, &hook.id, "OPS-2").await.unwrap();
    assert_eq!(store.issue_ref(&incident.id, &hook.id).await.unwrap().as_deref(), Some("OPS-2"));
    store.set_channel_error(&hook.id, Some("401 from the receiver")).await.unwrap();
    assert_eq!(
        store.channel(&p.id, &hook.id).await.unwrap().unwrap().last_error.as_deref(),
        Some("401 from the receiver")
    );

    // A deleted rule leaves its deliveries as history; a deleted channel takes its own.
    assert!(store.delete_rule(&p.id, &rule.id).await.unwrap());
    assert_eq!(store.rule_deliveries(&p.id, &rule.id, 10).await.unwrap().len(), 2);
    assert!(!store.delete_channel(&q.id, &hook.id).await.unwrap());
    assert!(store.delete_channel(&p.id, &hook.id).await.unwrap());
    assert!(store.rule_deliveries(&p.id, &rule.id, 10).await.unwrap().is_empty());
}
