//! A `moto_server` of our own on a free loopback port, for tests and local trials of the
//! AWS path: it speaks DynamoDB, DynamoDB Streams, SNS and SQS. It stops when dropped, and
//! by itself when the process that started it ends. With the venv's python beside
//! `moto_server`, it runs through `cloud/moto_serialized.py`: moto's transaction rollback
//! otherwise loses other requests' writes (see that file).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto_server with DynamoDB's writes serialized.
const SERIALIZED: &str = include_str!("../moto_serialized.py");

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// Where `moto_server` is: `ENGAGE_MOTO_SERVER`, the project's venv (`ENGAGE_VENV`, made by
/// scripts/setup.sh), or the PATH.
pub fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ENGAGE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = std::env::var_os("ENGAGE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/engage/venv")
        });
    let in_venv = venv.join("bin/moto_server");
    if in_venv.exists() {
        in_venv
    } else {
        PathBuf::from("moto_server")
    }
}

impl Moto {
    /// Starts moto_server and waits until it answers.
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let server = moto_server_path();
        let python = server.with_file_name("python");
        // moto_server itself, or the venv's python running it with DynamoDB's writes
        // serialized (the script is passed as `-c`, so no file needs to be found).
        let command: Vec<String> = if python.exists() {
            vec![python.display().to_string(), "-c".into(), SERIALIZED.into()]
        } else {
            vec![server.display().to_string()]
        };
        // A watchdog shell: moto goes when this process goes, even if it never drops us.
        // Its arguments: the port, this process, then the command.
        let script = r#"
            port=$1; parent=$2; shift 2
            "$@" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
            moto=$!
            trap 'kill $moto 2>/dev/null; exit 0' TERM INT
            while kill -0 "$parent" 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 1; done
            kill $moto 2>/dev/null
        "#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("moto-watchdog")
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .args(&command)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
        let mut moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before answering; run scripts/setup.sh to install it",
                    server.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not answer within 60 s", server.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The shell's trap stops moto_server, then the shell.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
