//! A private PostgreSQL cluster run from the machine's own binaries: the default database
//! of `labcat serve` and the throwaway database of the test suite.
//!
//! Layout under the cluster's root directory: `data/` (PGDATA), `run/` (the Unix socket;
//! the cluster listens on no TCP port), `postgres.log`. PostgreSQL refuses to run as root,
//! so when labcat is root the cluster runs as the `postgres` user.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::postgres::PgConnectOptions;

/// The port only names the socket file; nothing listens on TCP.
const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub root: PathBuf,
    /// Trade durability for speed (fsync off): for throwaway test clusters only.
    pub ephemeral: bool,
}

#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    /// The postmaster we started; `None` when we attached to one already running.
    owned_pid: Option<i32>,
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl EmbeddedPostgres {
    /// Starts the cluster (creating it on first use), or attaches to it if it is already
    /// running (for example `labcat keys create` next to a running `labcat serve`).
    pub fn start(options: &ClusterOptions) -> anyhow::Result<Self> {
        let root = options.root.clone();
        let binaries = find_binaries()?;
        let owner = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        for dir in [root.clone(), root.join("run")] {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = owner {
                chown(&dir, Some(uid), Some(gid))
                    .with_context(|| format!("cannot hand {} to postgres", dir.display()))?;
            }
        }
        let cluster = Self {
            root,
            owned_pid: None,
        };
        if !cluster.data_dir().join("PG_VERSION").exists() {
            cluster.init(&binaries, owner)?;
        }
        if cluster.running_pid().is_some() {
            cluster.wait_until_ready(None)?;
            return Ok(cluster);
        }
        let pid = cluster.spawn_postmaster(&binaries, owner, options.ephemeral)?;
        let cluster = Self {
            owned_pid: Some(pid),
            ..cluster
        };
        cluster.wait_until_ready(Some(pid))?;
        Ok(cluster)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// Connection options for one database of the cluster, over its Unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.root.join("run"))
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// The same as a URL, for tools that want one.
    pub fn url(&self, database: &str) -> String {
        let socket = self.root.join("run");
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={}",
            socket.display()
        )
    }

    fn init(&self, binaries: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
        let mut command = Command::new(binaries.join("initdb"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .current_dir(&self.root)
            .env("LC_ALL", "C");
        as_owner(&mut command, owner);
        let output = command.output().with_context(|| match owner {
            Some(_) => format!(
                "cannot run initdb as the postgres user in {}: every directory above it must be \
                 searchable by that user (root's home is not); choose database.data_dir \
                 elsewhere, e.g. under /var/lib",
                self.root.display()
            ),
            None => "cannot run initdb".to_owned(),
        })?;
        if !output.status.success() {
            bail!(
                "initdb failed for {}: {}",
                self.data_dir().display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn spawn_postmaster(
        &self,
        binaries: &Path,
        owner: Option<(u32, u32)>,
        ephemeral: bool,
    ) -> anyhow::Result<i32> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())?;
        if let Some((uid, gid)) = owner {
            chown(self.log_file(), Some(uid), Some(gid))?;
        }
        let mut command = Command::new(binaries.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.root.join("run"))
            .args(["-p", &PORT.to_string(), "-c", "listen_addresses="])
            .current_dir(&self.root)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if ephemeral {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ]);
        }
        as_owner(&mut command, owner);
        // Its own process group: a Ctrl-C in the terminal must reach labcat alone, which
        // finishes the requests in flight and then stops the cluster itself.
        command.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        // If labcat dies without stopping the cluster, the postmaster gets SIGINT (fast
        // shutdown) instead of living on as an orphan.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        // PR_SET_PDEATHSIG fires when the spawning *thread* ends, so spawn from a thread
        // that lives exactly as long as the postmaster.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let _ = sender.send(Ok(child.id() as i32));
                    let _ = child.wait();
                }
                Err(error) => {
                    let _ = sender.send(Err(error));
                }
            })?;
        let pid = receiver
            .recv()
            .context("postgres supervisor thread died")?
            .context("cannot start postgres")?;
        Ok(pid)
    }

    /// The pid in `postmaster.pid`, if that process is alive.
    fn running_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        process_alive(pid).then_some(pid)
    }

    /// Waits until the postmaster says it accepts connections (line 8 of postmaster.pid).
    fn wait_until_ready(&self, started: Option<i32>) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = fs::read_to_string(self.data_dir().join("postmaster.pid"))
                .ok()
                .and_then(|text| text.lines().nth(7).map(|line| line.trim().to_owned()));
            if status.as_deref() == Some("ready") {
                return Ok(());
            }
            if let Some(pid) = started
                && !process_alive(pid)
            {
                bail!(
                    "postgres exited during start-up; its log ({}) ends with:\n{}",
                    self.log_file().display(),
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!("postgres did not become ready within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(self.log_file()).and_then(|mut f| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Stops the cluster if this process started it (fast shutdown: open sessions are
    /// disconnected, everything committed is kept). Attached clusters are left running.
    pub fn stop(&self) {
        let Some(pid) = self.owned_pid else { return };
        // SAFETY: plain kill(2) on the pid we spawned.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the postmaster hard (SIGKILL), as a crash or an outage would. For tests.
    pub fn kill(&self) {
        if let Some(pid) = self.owned_pid {
            // SAFETY: plain kill(2) on the pid we spawned.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let name = std::ffi::CString::new(SUPERUSER)?;
    // SAFETY: getpwnam returns a pointer into static storage or null; read it at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("running as root needs a 'postgres' user to run PostgreSQL as; none exists");
    }
    // SAFETY: checked non-null above.
    let entry = unsafe { &*entry };
    Ok((entry.pw_uid, entry.pw_gid))
}

/// Finds the directory holding `initdb` and `postgres`: `$PG_BIN_DIR`, `pg_config
/// --bindir`, the newest `/usr/lib/postgresql/*/bin`, then `$PATH`.
pub fn find_binaries() -> anyhow::Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        if has_both(&dir) {
            return Ok(dir);
        }
        bail!("PG_BIN_DIR={} has no initdb and postgres", dir.display());
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_both(&dir) {
            return Ok(dir);
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
    {
        return Ok(dir);
    }
    bail!(
        "no PostgreSQL server binaries (initdb, postgres) found; install PostgreSQL, set \
         PG_BIN_DIR, or configure database.url / DATABASE_URL"
    )
}
