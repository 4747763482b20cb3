//! `sightline sourcemaps upload`: every `*.map` beside its minified file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload every `*.map` under DIR whose minified file stands beside it.
    Upload(UploadArgs),
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The release the files were built for (the `release` of error events).
    #[arg(long)]
    release: String,
    /// The URL the files are served under: a file `DIR/js/app.js` is
    /// `<url-prefix>js/app.js` in stack traces.
    #[arg(long)]
    url_prefix: String,
    /// The project's id.
    #[arg(long, env = "SIGHTLINE_PROJECT")]
    project: String,
    /// A secret key with the admin role (or the admin token).
    #[arg(long, env = "SIGHTLINE_TOKEN", hide_env_values = true)]
    token: String,
    /// The Sightline server.
    #[arg(long, env = "SIGHTLINE_SERVER", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// The build output folder.
    dir: PathBuf,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Upload(args) => upload(args).await,
    }
}

fn maps_under(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            maps_under(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "map") {
            found.push(path);
        }
    }
    Ok(())
}

async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let mut maps = Vec::new();
    maps_under(&args.dir, &mut maps)?;
    maps.sort();
    let http = reqwest::Client::new();
    let endpoint = format!("{}/api/v1/projects/{}/sourcemaps", args.server.trim_end_matches('/'), args.project);
    let (mut uploaded, mut failed) = (0, 0);
    for map in maps {
        let minified = map.with_extension("");
        if !minified.is_file() {
            eprintln!("skipped {}: no {} beside it", map.display(), minified.display());
            continue;
        }
        let relative = minified
            .strip_prefix(&args.dir)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{relative}", args.url_prefix);
        let body = std::fs::read(&map).with_context(|| format!("reading {}", map.display()))?;
        let response = http
            .post(&endpoint)
            .query(&[("release", args.release.as_str()), ("url", url.as_str())])
            .bearer_auth(&args.token)
            .body(body)
            .send()
            .await
            .with_context(|| format!("uploading {}", map.display()))?;
        if response.status().is_success() {
            println!("uploaded {} for {url}", map.display());
            uploaded += 1;
        } else {
            let status = response.status();
            let answer = response.text().await.unwrap_or_default();
            eprintln!("failed {} for {url}: {status} {answer}", map.display());
            failed += 1;
        }
    }
    println!("{uploaded} source maps uploaded for release {}", args.release);
    if failed > 0 {
        bail!("{failed} source maps failed to upload");
    }
    Ok(())
}
