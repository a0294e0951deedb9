//! `raccordo adapter check | run | bench`.

use clap::Subcommand;
use raccordo_adapters::MappingFile;
use raccordo_adapters::runner::{Runner, RunnerConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum AdapterCommand {
    /// What a sample export would give, before anything is sent: records that pass and fail
    /// with reasons, required fields never mapped, untranslated codes, and the round trip.
    /// Exit 0 when everything passes and round-trips, 1 otherwise, 2 on a bad mapping or file.
    Check {
        #[arg(long)]
        mapping: PathBuf,
        #[arg(long)]
        sample: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Include the canonical document of each passing record (with --json: under
        /// "documents"; in text: one JSON line each). They hold personal data: do not share.
        #[arg(long)]
        documents: bool,
    },
    /// Runs beside the local system: submits its exports, writes inbound referrals and status
    /// events in the local format, quarantines what cannot go, resumes after a restart.
    Run {
        #[arg(long)]
        mapping: PathBuf,
        /// The gateway, e.g. https://raccordo.regione.toscana.it:8443
        #[arg(long)]
        gateway: String,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// The export folder to watch (processed files move to its done/).
        #[arg(long)]
        watch: Option<PathBuf>,
        /// A local JSON API to poll for records.
        #[arg(long)]
        poll: Option<String>,
        /// Where inbound items are written.
        #[arg(long)]
        inbound: PathBuf,
        #[arg(long)]
        quarantine: PathBuf,
        /// Checkpoints and cursors.
        #[arg(long)]
        state: PathBuf,
        /// Seconds between cycles.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// One cycle, then exit.
        #[arg(long)]
        once: bool,
    },
    /// CSV to validated canonical JSON on one thread, against reading the same file as the
    /// baseline; prints JSON.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A mapping file, or exit code 2 with the reason (file and line) on standard error.
fn load(mapping: &std::path::Path, command: &str) -> Result<MappingFile, ExitCode> {
    MappingFile::load(mapping).map_err(|e| {
        eprintln!("raccordo adapter {command}: {e}");
        ExitCode::from(2)
    })
}

pub fn adapter(command: AdapterCommand) -> ExitCode {
    match command {
        AdapterCommand::Check {
            mapping,
            sample,
            json,
            documents,
        } => {
            let m = match load(&mapping, "check") {
                Ok(m) => m,
                Err(code) => return code,
            };
            let year = time::OffsetDateTime::now_utc().year();
            match raccordo_adapters::check::check_with(
                &m,
                &mapping.display().to_string(),
                &sample,
                year,
                documents,
            ) {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{}", report.text());
                        for d in &report.documents {
                            println!("{d}");
                        }
                    }
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("raccordo adapter check: {e}");
                    ExitCode::from(2)
                }
            }
        }
        AdapterCommand::Run {
            mapping,
            gateway,
            ca,
            cert,
            key,
            watch,
            poll,
            inbound,
            quarantine,
            state,
            interval,
            once,
        } => {
            let m = match load(&mapping, "run") {
                Ok(m) => m,
                Err(code) => return code,
            };
            let cfg = RunnerConfig {
                mapping: m,
                gateway: gateway.trim_end_matches('/').to_owned(),
                ca,
                cert,
                key,
                watch,
                poll,
                inbound,
                quarantine,
                state,
                interval: Duration::from_secs(interval.max(1)),
                max_backoff: Duration::from_secs(30),
                checkpoint_every: 50,
            };
            let result = crate::runtime().map_err(|e| e.to_string()).and_then(|rt| {
                rt.block_on(async {
                    let runner = Runner::new(cfg).map_err(|e| e.to_string())?;
                    if once {
                        let cycle = runner.cycle().await.map_err(|e| e.to_string())?;
                        println!("{}", serde_json::to_string(&cycle).unwrap_or_default());
                        Ok(())
                    } else {
                        runner
                            .run(async {
                                let _ = tokio::signal::ctrl_c().await;
                            })
                            .await
                            .map_err(|e| e.to_string())
                    }
                })
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("raccordo adapter run: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        AdapterCommand::Bench { rows, out } => {
            let scratch =
                std::env::temp_dir().join(format!("raccordo-adapter-bench-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&scratch);
            let result = raccordo_adapters::bench::run(rows, &scratch);
            let _ = std::fs::remove_dir_all(&scratch);
            match result {
                Ok(report) => crate::emit("adapter bench", &report, out),
                Err(e) => {
                    eprintln!("raccordo adapter bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
