//! Headless Chromium driven by its command line: `--dump-dom` prints the DOM once the
//! page has loaded and its scripts have run; `--screenshot` saves a PNG.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// One browser run may take this long (a cold start is a few seconds).
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub struct Chromium {
    bin: PathBuf,
    /// A profile of this run's own, so nothing of the machine's browser is used.
    profile: PathBuf,
}

/// `E2E_CHROMIUM`, else the first browser of the usual names on `PATH`.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("E2E_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// Whether a missing browser fails the suite rather than being noted: in CI
/// (`CI=true`) and whenever `E2E_REQUIRE_BROWSER` is set (as `.ci/run` does).
pub fn required() -> bool {
    let set = |name: &str| {
        std::env::var(name)
            .ok()
            .is_some_and(|v| !v.trim().is_empty() && v.trim() != "0" && v.trim() != "false")
    };
    set("CI") || set("E2E_REQUIRE_BROWSER")
}

impl Chromium {
    pub fn new(bin: PathBuf, profile: PathBuf) -> Chromium {
        Chromium { bin, profile }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--headless")
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--disable-dev-shm-usage")
            .arg("--no-first-run")
            .arg("--disable-background-networking")
            .arg("--disable-component-update")
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // D-Bus and GPU chatter, not the page's.
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, mut cmd: Command, what: &str) -> Result<Vec<u8>, String> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("{what}: cannot start {}: {e}", self.bin.display()))?;
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .map_err(|_| format!("{what}: no answer within {RUN_LIMIT:?}"))?
            .map_err(|e| format!("{what}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{what}: chromium exited with {}", out.status));
        }
        Ok(out.stdout)
    }

    /// The serialised DOM of `url` after load.
    pub async fn dump_dom(&self, url: &str) -> Result<String, String> {
        let mut cmd = self.command();
        cmd.arg("--dump-dom").arg(url);
        let out = self.run(cmd, &format!("--dump-dom {url}")).await?;
        String::from_utf8(out).map_err(|e| format!("--dump-dom {url}: not UTF-8: {e}"))
    }

    /// A PNG of `url` in a window of `width`×`height`.
    pub async fn screenshot(
        &self,
        url: &str,
        path: &Path,
        (width, height): (u32, u32),
    ) -> Result<(), String> {
        let mut cmd = self.command();
        cmd.arg("--hide-scrollbars")
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", path.display()))
            .arg(url);
        self.run(cmd, &format!("--screenshot {url}")).await?;
        Ok(())
    }
}

/// Width and height from a PNG's header, if `bytes` is one.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16) != Some(b"IHDR") {
        return None;
    }
    let be = |r: std::ops::Range<usize>| {
        bytes
            .get(r)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    Some((be(16..20)?, be(20..24)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&800u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 800)));
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(png_size(&png[..20]), None);
    }
}
