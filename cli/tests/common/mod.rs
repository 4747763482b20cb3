//! What the end-to-end tests share: the real binary on a free port.
#![allow(dead_code)] // each test file uses its own part

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN: &str = "e2e-admin-token";
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Embedded,
    /// NATS with this test's own stream.
    Nats,
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub http: reqwest::Client,
}

/// A client that opens a connection per request: a server may close a
/// connection after refusing an oversized body, and a pooled connection
/// would then race that close.
pub fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn nats_is_up() {
    if std::net::TcpStream::connect_timeout(&"127.0.0.1:4222".parse().unwrap(), Duration::from_secs(2)).is_err() {
        panic!(
            "NATS with JetStream is not listening on 127.0.0.1:4222; start it with `./scripts/services.sh` \
             (start-stop-daemon --start --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server)"
        );
    }
}

impl Server {
    pub async fn start(mode: Mode, data_dir: &Path, stream: &str) -> Server {
        Server::start_with(mode, data_dir, stream, &[]).await
    }

    pub async fn start_with(mode: Mode, data_dir: &Path, stream: &str, extra: &[&str]) -> Server {
        let mut cmd = Server::command(data_dir);
        cmd.env("SIGHTLINE_ADMIN_TOKEN", ADMIN).args(extra).stderr(Stdio::inherit());
        if let Mode::Nats = mode {
            nats_is_up();
            cmd.arg("--nats").arg(NATS_URL).arg("--nats-stream").arg(stream);
        }
        Server::healthy(cmd).await
    }

    /// An embedded-mode server over `data_dir` with these environment variables.
    pub async fn start_with_env(data_dir: &Path, env: &[(String, String)]) -> Server {
        let mut cmd = Server::command(data_dir);
        cmd.env("SIGHTLINE_ADMIN_TOKEN", ADMIN).envs(env.iter().cloned()).stderr(Stdio::inherit());
        Server::healthy(cmd).await
    }

    /// A first start without an admin token, and the one-time password of
    /// the owner account it printed.
    pub async fn start_first_time(data_dir: &Path) -> (Server, String) {
        let mut cmd = Server::command(data_dir);
        cmd.env_remove("SIGHTLINE_ADMIN_TOKEN").stderr(Stdio::piped());
        let mut server = Server::healthy(cmd).await;
        let stderr = server.child.stderr.take().expect("piped stderr");
        let (found, password) = std::sync::mpsc::channel();
        // Reads the password line, then passes the rest through.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("with the one-time password ") {
                    let _ = found.send(rest.trim().to_owned());
                } else {
                    eprintln!("{line}");
                }
            }
        });
        let password = password.recv_timeout(Duration::from_secs(10)).expect("the one-time password is printed");
        (server, password)
    }

    /// `sightline serve` on a free port over `data_dir`.
    fn command(data_dir: &Path) -> Command {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sightline"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--workers")
            .arg("2")
            .env("SIGHTLINE_LOG", "warn")
            .stdout(Stdio::null());
        cmd
    }

    /// Spawns `cmd` and waits for `/healthz`.
    async fn healthy(mut cmd: Command) -> Server {
        let listen = cmd.get_args().skip_while(|a| *a != "--listen").nth(1).expect("--listen").to_owned();
        let child = cmd.spawn().expect("start sightline");
        let server = Server { child, base: format!("http://{}", listen.to_string_lossy()), http: fresh_connections() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server.http.get(format!("{}/healthz", server.base)).send().await
                && r.status() == 200
            {
                return server;
            }
            assert!(Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create_project(&self, name: &str) -> (String, String) {
        let r = self
            .http
            .post(self.url("/api/v1/projects"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        (body["id"].as_str().unwrap().to_owned(), body["ingest_key"].as_str().unwrap().to_owned())
    }

    pub async fn ingest_raw(&self, key: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.http.post(self.url("/api/v1/ingest")).header("X-Sightline-Key", key).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("ingest with {headers:?}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn ingest(&self, key: &str, events: Value) -> Value {
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
        let (status, answer) = self.ingest_raw(key, body, &[("Content-Type", "application/json")]).await;
        assert_eq!(status, 202, "{answer}");
        answer
    }

    pub async fn pageviews(&self, project: &str, query: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/api/v1/projects/{project}/pageviews?{query}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Today's totals (page views, visitors), waiting up to `within` for
    /// them to reach `expected` page views.
    pub async fn totals_reaching(&self, project: &str, expected: i64, within: Duration) -> (i64, i64) {
        let deadline = Instant::now() + within;
        loop {
            let now = now_ms();
            let answer =
                self.pageviews(project, &format!("interval=day&from={}&to={}", now - 86_400_000, now + 1)).await;
            let total = (answer["total"]["pageviews"].as_i64().unwrap(), answer["total"]["visitors"].as_i64().unwrap());
            if total.0 >= expected || Instant::now() > deadline {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, and the process must exit cleanly within ten seconds.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful stop exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "graceful stop took over ten seconds");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A new, empty PostgreSQL database on the machine's server; its URL.
pub fn postgres_database() -> String {
    let name = format!("sightline_e2e_{}_{}", std::process::id(), now_ms());
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "cannot create a database on 127.0.0.1:5432 ({}); start PostgreSQL with `./scripts/services.sh`",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

pub fn drop_postgres_database(url: &str) {
    let name = url.rsplit('/').next().unwrap();
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .output();
}
