//! The archive and source maps on an S3-compatible store: `s3s-fs`, a real
//! S3 server over a folder that checks every request's SigV4 signature
//! (built by `scripts/s3s.sh`). A server ships its sealed archive segments
//! and keeps its maps in the bucket; a second server on a fresh disk serves
//! the same numbers from the bucket alone and still resolves stacks
//! through the uploaded map; wrong credentials are refused at start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN, Server, free_port, now_ms};
use serde_json::{Value, json};

const BUCKET: &str = "sightline-test";
const KEY_ID: &str = "AKIASIGHTLINETEST";
const SECRET: &str = "sightline-test-secret-key";

/// `s3s-fs` on a free port over `root`, with one bucket; killed on drop.
struct S3 {
    child: Child,
    endpoint: String,
    root: PathBuf,
}

impl S3 {
    fn start(root: &Path) -> S3 {
        let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/s3s-fs");
        assert!(binary.exists(), "s3s-fs is not built: run `./scripts/s3s.sh` (make test does)");
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", KEY_ID, "--secret-key", SECRET])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3 { child, endpoint: format!("http://127.0.0.1:{port}"), root: root.to_owned() }
    }

    /// The objects' files under `prefix` of the bucket, by name.
    fn files(&self, prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.join(BUCKET).join(prefix)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if !path.to_string_lossy().contains(".s3s") {
                    found.push(path.strip_prefix(self.root.join(BUCKET)).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sightline serve` args for a bucket at `endpoint` with these credentials.
fn bucket_args(s3: &S3, database: &str, secret: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT".into(), s3.endpoint.clone()),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ("SIGHTLINE_DATABASE_URL".into(), database.into()),
        ("SIGHTLINE_OBJECT_STORE".into(), format!("s3://{BUCKET}/deploy")),
        ("SIGHTLINE_ARCHIVE_SHIP_SECONDS".into(), "1".into()),
    ]
}

/// A map of `app.min.js`, whose line 1 column 1 is line 10, column 5 of
/// `src/checkout.ts`.
const MAP: &str =
    r#"{"version":3,"file":"app.min.js","sources":["src/checkout.ts"],"names":["render"],"mappings":"AASIA"}"#;

/// Waits until more than `before` segments are in the bucket and the disk
/// at `data_dir` holds only an empty segment (everything written is
/// shipped); the bucket's segments.
async fn wait_shipped(s3: &S3, data_dir: &Path, before: usize) -> Vec<String> {
    let local_bytes = || -> Vec<u64> {
        let entries = std::fs::read_dir(data_dir.join("archive")).unwrap().flatten();
        entries.filter(|e| e.path().is_file()).map(|e| e.metadata().unwrap().len()).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shipped = s3.files("deploy/archive/serve");
        if shipped.len() > before && local_bytes() == vec![0] {
            return shipped;
        }
        assert!(Instant::now() < deadline, "not shipped: {shipped:?} in the bucket, {:?} on the disk", local_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(server: &Server, path: &str) -> Value {
    server.http.get(server.url(path)).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_archive_and_source_maps_live_in_an_s3_bucket_and_a_fresh_disk_serves_them() {
    let s3_root = tempfile::tempdir().unwrap();
    let s3 = S3::start(s3_root.path());
    let meta = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", meta.path().join("meta.db").display());

    let first_disk = tempfile::tempdir().unwrap();
    let env = bucket_args(&s3, &database, SECRET);
    let first = Server::start_with_env(first_disk.path(), &env).await;
    let (project, key) = first.create_project("shop").await;
    let upload = first
        .http
        .post(
            first.url(&format!("/api/v1/projects/{project}/sourcemaps?release=r1&url=https://shop.example/app.min.js")),
        )
        .bearer_auth(ADMIN)
        .body(MAP)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201, "{}", upload.text().await.unwrap());
    let now = now_ms();
    let pageviews: Vec<Value> = (0..40)
        .map(|i| json!({ "type": "pageview", "anonymous_id": format!("v{}", i % 7), "url": format!("https://shop.example/p{}", i % 3), "ts": now - 1_000 }))
        .collect();
    first.ingest(&key, json!(pageviews)).await;
    let error = json!({
        "type": "error", "anonymous_id": "v1", "release": "r1", "url": "https://shop.example/cart",
        "error_type": "TypeError", "message": "price is undefined",
        "stack": "TypeError: price is undefined\n    at r (https://shop.example/app.min.js:1:1)",
    });
    first.ingest(&key, json!([error])).await;
    assert_eq!(first.totals_reaching(&project, 40, Duration::from_secs(10)).await, (40, 7));

    // The sealed segments go to the bucket and leave the disk: once a
    // second has passed without a new batch, all that is left on it is an
    // empty segment.
    let shipped = wait_shipped(&s3, first_disk.path(), 0).await;
    assert_eq!(s3.files("deploy/sourcemaps").len(), 1, "the map is in the bucket");
    first.stop();

    // A new machine: a fresh disk, the same bucket and database.
    let second_disk = tempfile::tempdir().unwrap();
    let second = Server::start_with_env(second_disk.path(), &env).await;
    assert_eq!(
        second.totals_reaching(&project, 40, Duration::from_secs(10)).await,
        (40, 7),
        "replayed from the bucket"
    );
    let range = format!("from={}&to={}", now - 86_400_000, now + 60_000);
    let groups = get(&second, &format!("/api/v1/projects/{project}/errors?{range}")).await;
    let fingerprint = groups["groups"][0]["fingerprint"].as_str().expect("the error group is back").to_owned();
    let group = get(&second, &format!("/api/v1/projects/{project}/errors/{fingerprint}?{range}")).await;
    let frame = &group["latest_event"]["frames"][0];
    assert_eq!(
        (&frame["file"], &frame["line"], &frame["column"]),
        (&json!("src/checkout.ts"), &json!(10), &json!(5)),
        "resolved through the map in the bucket: {group}"
    );
    // Its own segments are numbered after the bucket's: nothing shipped
    // before is overwritten, and a third disk replays both servers' batches.
    second.ingest(&key, json!([{ "type": "pageview", "anonymous_id": "v1", "url": "https://shop.example/p0" }])).await;
    wait_shipped(&s3, second_disk.path(), shipped.len()).await;
    second.stop();
    let third_disk = tempfile::tempdir().unwrap();
    let third = Server::start_with_env(third_disk.path(), &env).await;
    assert_eq!(third.totals_reaching(&project, 41, Duration::from_secs(10)).await, (41, 7));
    third.stop();

    // The store checks signatures: a wrong secret is refused at start.
    let fourth_disk = tempfile::tempdir().unwrap();
    let wrong = bucket_args(&s3, &database, "not-the-secret");
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
        .arg(fourth_disk.path())
        .envs(wrong)
        .env("SIGHTLINE_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a server with the wrong secret must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("object store"), "{stderr}");
}
