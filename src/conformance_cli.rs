//! `raccordo conformance run | verify`.

use clap::{Args, Subcommand, ValueEnum};
use raccordo_conformance::profiles::{adapter, gateway};
use raccordo_conformance::{bundle, report};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum Profile {
    Adapter,
    Gateway,
    AmbitoClient,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(long, value_enum)]
    profile: Profile,
    /// Folder for the evidence bundle (created).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the generated test data; a run prints it, and replays with it.
    #[arg(long)]
    seed: Option<u64>,
    /// Runs this test only (with --seed, replays it).
    #[arg(long)]
    only: Option<String>,
    /// adapter: the mapping file.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// adapter: a clean sample export.
    #[arg(long)]
    clean: Option<PathBuf>,
    /// adapter: a sample of records that must be refused.
    #[arg(long)]
    dirty: Option<PathBuf>,
    /// adapter: the refusals the dirty sample must give (expected.json: record_id, rule,
    /// field); without it, every dirty record must be refused.
    #[arg(long)]
    expected: Option<PathBuf>,
    /// gateway: its base URL (https://host:port). Without it, with --sandbox, the kit starts
    /// a real gateway with a throw-away PKI and data folder.
    #[arg(long)]
    target: Option<String>,
    #[arg(long)]
    sandbox: bool,
    /// gateway: the CA that issued the gateway's and the parties' certificates.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// gateway: the sending ambito, its certificate and key (these also sign the bundle).
    #[arg(long = "as")]
    as_party: Option<String>,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    /// ambito-client: seconds the kit waits for the system at each step.
    #[arg(long, default_value_t = 300)]
    step_timeout: u64,
    /// gateway: the receiving ambito, its certificate and key.
    #[arg(long)]
    peer: Option<String>,
    #[arg(long)]
    peer_cert: Option<PathBuf>,
    #[arg(long)]
    peer_key: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ConformanceCommand {
    /// Runs a profile; TAP on standard output, reports and the signed evidence bundle in --out.
    /// Exit 0 conformant, 1 not conformant, 2 usage or configuration error, 3 incomplete,
    /// 4 internal error.
    Run(Box<RunArgs>),
    /// Checks an evidence bundle offline: every file against the manifest, the signature.
    Verify { bundle: PathBuf },
}

fn usage(message: &str) -> ExitCode {
    eprintln!("raccordo conformance: {message}");
    ExitCode::from(2)
}

pub fn conformance(command: ConformanceCommand) -> ExitCode {
    match command {
        ConformanceCommand::Verify { bundle: dir } => match bundle::verify(&dir) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e @ bundle::BundleError::Invalid(_)) => {
                eprintln!("raccordo conformance verify: {e}");
                ExitCode::from(1)
            }
            Err(e) => usage(&e.to_string()),
        },
        ConformanceCommand::Run(args) => {
            let RunArgs {
                profile,
                out,
                seed,
                only,
                mapping,
                clean,
                dirty,
                expected,
                target,
                sandbox,
                ca,
                as_party,
                cert,
                key,
                peer,
                peer_cert,
                peer_key,
                step_timeout,
            } = *args;
            // Test data, not a secret: the clock and the process are seed enough.
            let seed = seed.unwrap_or_else(|| {
                let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
                (now as u64) ^ u64::from(std::process::id()).rotate_left(32)
            });
            let scratch = match tempfile::TempDir::new() {
                Ok(d) => d,
                Err(e) => return usage(&e.to_string()),
            };
            let outcome = match profile {
                Profile::Adapter => {
                    let (Some(mapping), Some(clean)) = (mapping, clean) else {
                        return usage("the adapter profile needs --mapping and --clean");
                    };
                    let year = time::OffsetDateTime::now_utc().year();
                    let samples = adapter::Samples {
                        clean: &clean,
                        dirty: dirty.as_deref(),
                        expected: expected.as_deref(),
                    };
                    let results = adapter::run(&mapping, &samples, only.as_deref(), year);
                    let report = raccordo_conformance::report(
                        "adapter",
                        adapter::CASES,
                        &mapping.display().to_string(),
                        seed,
                        results,
                    );
                    let fingerprint = std::fs::read(&mapping)
                        .map(|b| bundle::sha256(&b))
                        .unwrap_or_default();
                    let signer = match (cert, key) {
                        (Some(c), Some(k)) => Ok((c, k)),
                        _ => bundle::ephemeral_signer(scratch.path()).map_err(|e| e.to_string()),
                    };
                    signer.map(|(c, k)| (report, fingerprint, c, k))
                }
                Profile::AmbitoClient => run_client(
                    &out,
                    as_party.as_deref().unwrap_or("prato"),
                    step_timeout,
                    seed,
                    only.as_deref(),
                ),
                Profile::Gateway => run_gateway(
                    sandbox,
                    target,
                    ca,
                    as_party,
                    cert,
                    key,
                    peer,
                    peer_cert,
                    peer_key,
                    seed,
                    only.as_deref(),
                    scratch.path(),
                ),
            };
            let (report, fingerprint, sign_cert, sign_key) = match outcome {
                Ok(x) => x,
                Err(e) => return usage(&e),
            };
            print!("{}", report.tap());
            println!("# seed: {seed} (replay one test with --seed {seed} --only ID)");
            if let Err(e) = bundle::write(&out, &report, &fingerprint, &sign_cert, &sign_key) {
                eprintln!("raccordo conformance: writing the bundle: {e}");
                return ExitCode::from(4);
            }
            println!(
                "# bundle: {} (check it with: raccordo conformance verify {})",
                out.display(),
                out.display()
            );
            ExitCode::from(report.verdict.exit_code())
        }
    }
}

type Outcome = Result<(report::Report, String, PathBuf, PathBuf), String>;

/// The sandbox for a vendor's system: its data and PKI are kept beside the bundle, in
/// `<out>-sandbox` (never inside it: the bundle is shared, the sandbox's keys are not), so that
/// the system can be pointed at it; each step is printed and waited for.
fn run_client(
    out: &Path,
    ambito: &str,
    step_timeout: u64,
    seed: u64,
    only: Option<&str>,
) -> Outcome {
    use raccordo_conformance::profiles::client;
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-sandbox");
    let data = out.with_file_name(name);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    crate::runtime()
        .map_err(|e| e.to_string())?
        .block_on(async {
            let sandbox = client::Sandbox::start(&data, ambito).await?;
            println!("# sandbox: {}", sandbox.url);
            println!(
                "# point the system at it as ambito {ambito}: CA {}, certificate {}, key {}",
                sandbox.ca.display(),
                sandbox.cert.display(),
                sandbox.key.display()
            );
            let instruct = |step: client::Step| {
                println!("# NEXT (within {step_timeout} s): {}", step.instruction());
            };
            let results = client::run(
                &sandbox,
                std::time::Duration::from_secs(step_timeout),
                only,
                &instruct,
            )
            .await;
            let fingerprint = raccordo_gateway::pki::load_certificates(&sandbox.cert)
                .ok()
                .and_then(|c| c.first().map(|c| raccordo_gateway::pki::fingerprint(c)))
                .unwrap_or_default();
            let report =
                raccordo_conformance::report("ambito-client", client::CASES, ambito, seed, results);
            let (cert, key) = (sandbox.cert.clone(), sandbox.key.clone());
            sandbox.stop().await;
            Ok((report, fingerprint, cert, key))
        })
}

#[allow(clippy::too_many_arguments)]
fn run_gateway(
    sandbox: bool,
    target: Option<String>,
    ca: Option<PathBuf>,
    as_party: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    peer: Option<String>,
    peer_cert: Option<PathBuf>,
    peer_key: Option<PathBuf>,
    seed: u64,
    only: Option<&str>,
    scratch: &Path,
) -> Outcome {
    crate::runtime().map_err(|e| e.to_string())?.block_on(async {
        let mut sandbox_gateway = None;
        let t = if sandbox {
            let data = scratch.join("sandbox");
            let (url, _, handle) = raccordo_conformance::profiles::sandbox_gateway(&data).await?;
            sandbox_gateway = Some(handle);
            let pki = raccordo_gateway::pki::DevPki::new(&data);
            gateway::Target {
                url,
                ca: pki.ca_cert(),
                sender: gateway::Party { id: "prato".into(), cert: pki.client_cert("prato"), key: pki.client_key("prato") },
                receiver: gateway::Party { id: "firenze".into(), cert: pki.client_cert("firenze"), key: pki.client_key("firenze") },
            }
        } else {
            match (target, ca, as_party, cert, key, peer, peer_cert, peer_key) {
                (Some(url), Some(ca), Some(a), Some(c), Some(k), Some(p), Some(pc), Some(pk)) => gateway::Target {
                    url: url.trim_end_matches('/').to_owned(),
                    ca,
                    sender: gateway::Party { id: a, cert: c, key: k },
                    receiver: gateway::Party { id: p, cert: pc, key: pk },
                },
                _ => return Err("the gateway profile needs --sandbox, or --target, --ca, --as, --cert, --key, --peer, --peer-cert and --peer-key".into()),
            }
        };
        let results = gateway::run(&t, seed, only, scratch).await;
        let fingerprint = gateway::server_fingerprint(&t).await.unwrap_or_else(|e| format!("unknown: {e}"));
        let report = raccordo_conformance::report("gateway", gateway::CASES, &t.url, seed, results);
        if let Some(handle) = sandbox_gateway {
            handle.stop(true).await;
        }
        Ok((report, fingerprint, t.sender.cert.clone(), t.sender.key.clone()))
    })
}
