//! `raccordo`: the one command-line program. It only composes the crates; the work is in
//! `gateway/` (and, later, `adapters/` and `conformance/`).

mod adapter_cli;
mod conformance_cli;

/// mimalloc instead of glibc's allocator: converting records and serving requests allocate many
/// small strings and maps, and malloc and free were a fifth of the adapters' conversion time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use raccordo_gateway::bench::{self, BenchOptions};
use raccordo_gateway::store::audit;
use raccordo_gateway::{Application, Config, Settings, telemetry, tls};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raccordo",
    version,
    about = "Raccordo: the Regione Toscana interoperability gateway for social-inclusion services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. With no configuration: data in ./raccordo-data, mTLS on 127.0.0.1:8443,
    /// and a development PKI created on first start.
    Serve {
        /// A configuration file layered over the defaults (see deploy/raccordo.toml).
        #[arg(long, env = "RACCORDO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Anonymised monitoring tools.
    Monitoring {
        #[command(subcommand)]
        command: MonitoringCommand,
    },
    /// Record linkage tools: synthetic registers and quality evaluation.
    Linkage {
        #[command(subcommand)]
        command: LinkageCommand,
    },
    /// The Region's certificate authority for ambito systems.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Adapters: check a mapping against a sample export, run beside a local system, bench.
    Adapter {
        #[command(subcommand)]
        command: adapter_cli::AdapterCommand,
    },
    /// The conformance kit: run a profile against an adapter or a gateway; verify a bundle.
    Conformance {
        #[command(subcommand)]
        command: conformance_cli::ConformanceCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy a stopped gateway's store (every tree, one consistent instant) to one file with a
    /// digest; mode 0600. The master key is not in it: back it up apart. Prints JSON.
    Backup {
        #[arg(long, default_value = "./raccordo-data")]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Load a backup into a data directory that has no store yet, after checking its digest;
    /// verifies the restored audit chain. Exit 0 restored, 1 restored but the chain is broken,
    /// 2 refused (damaged file, existing store, unreadable).
    Restore {
        #[arg(long, default_value = "./raccordo-data")]
        data: PathBuf,
        #[arg(long)]
        from: PathBuf,
    },
    /// Load generator: referrals over mTLS against a gateway in its own process (sled, or
    /// PostgreSQL with --postgres-url), with a bare mTLS echo
    /// server as the baseline in the same run. Prints JSON.
    Bench {
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Warm-up seconds per phase, not measured.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Also write the JSON report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run the gateway on PostgreSQL (a schema of its own on this server, dropped after)
        /// instead of sled.
        #[arg(long)]
        postgres_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum MonitoringCommand {
    /// A release over a seeded synthetic population of statistical records (every indicator,
    /// every breakdown), timed phase by phase beside a plain group-by count measured in the same
    /// run. Prints JSON.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Threads computing the tables.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also write the report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LinkageCommand {
    /// Write two registers of a seeded synthetic population as CSV (truth column entity_id).
    Synth {
        #[arg(long, default_value_t = 10_000)]
        people: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Chance that each register saw each person.
        #[arg(long, default_value_t = 0.7)]
        share: f64,
        #[arg(long)]
        left: PathBuf,
        #[arg(long)]
        right: PathBuf,
    },
    /// Benchmark: two registers of a synthetic population encoded and matched, with quality at
    /// the configured thresholds and, as baselines measured in the same run, plain HMAC-SHA256
    /// per record and scoring every pair. Prints JSON.
    Bench {
        #[arg(long, default_value_t = 143_000)]
        people: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, env = "RACCORDO_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Link two CSV files with the gateway's normalisation, encoder and matcher, and print
    /// precision, recall, F1 and the confusion counts at each threshold. Columns are the
    /// schema's field names (given_names, family_name, aliases, birth_date,
    /// birth_date_is_placeholder, sex, country_of_birth); any may be absent.
    Eval {
        #[arg(long)]
        left: PathBuf,
        #[arg(long)]
        right: PathBuf,
        /// The column holding the same entity id for the same person in both files.
        #[arg(long)]
        truth: String,
        /// The gateway's configuration file, for its linkage thresholds and keys.
        #[arg(long, env = "RACCORDO_CONFIG")]
        config: Option<PathBuf>,
        /// Also write the JSON report here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the Region's CA for ambito certificates in DIR (never overwrites one).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "Regione Toscana - Raccordo CA")]
        name: String,
    },
    /// Sign a certificate for an ambito: from its certificate request (--csr, the ambito keeps
    /// its key), or with a new key written beside the certificate.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        ambito: String,
        #[arg(long)]
        csr: Option<PathBuf>,
    },
    /// List issued certificates (JSON).
    List {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Revoke a certificate by serial; the gateway picks the list up without a restart.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        serial: String,
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Move pseudonyms and linkage encodings to the next key epoch, keeping every link. Run with
    /// the gateway stopped; an interrupted rotation leaves the old epoch working and resumes when
    /// run again.
    Rotate {
        #[arg(long, env = "RACCORDO_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of a (stopped) gateway's data directory, or with --config of the
    /// configured store (a PostgreSQL store can be checked while gateways run), and report the
    /// first broken link. Exit code 0: valid; 1: broken; 2: could not be read.
    Verify {
        #[arg(long, default_value = "./raccordo-data")]
        data: PathBuf,
        #[arg(long, conflicts_with = "data")]
        config: Option<PathBuf>,
    },
}

fn verify_audit(
    data: &std::path::Path,
    config: Option<&std::path::Path>,
) -> Result<audit::VerifyReport, String> {
    match config {
        None => audit::verify_data_dir(data).map_err(|e| e.to_string()),
        Some(file) => {
            let config = Settings::load(Some(file))
                .and_then(Config::from_settings)
                .map_err(|e| e.to_string())?;
            raccordo_gateway::store::Store::open_with(&config.store)
                .and_then(|s| s.verify_audit())
                .map_err(|e| e.to_string())
        }
    }
}

fn main() -> ExitCode {
    tls::install_default_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Adapter { command } => adapter_cli::adapter(command),
        Command::Conformance { command } => conformance_cli::conformance(command),
        Command::Audit {
            command: AuditCommand::Verify { data, config },
        } => match verify_audit(&data, config.as_deref()) {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                if report.valid {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("raccordo audit verify: {e}");
                ExitCode::from(2)
            }
        },
        Command::Backup { data, out } => {
            let store = match raccordo_gateway::store::Store::open(&data.join("store")) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "raccordo backup: {e} (stop the gateway first: its store is locked while it runs)"
                    );
                    return ExitCode::from(2);
                }
            };
            match store.backup(&out) {
                Ok(report) => emit("backup", &report, None),
                Err(e) => {
                    eprintln!("raccordo backup: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Restore { data, from } => {
            match raccordo_gateway::store::backup::restore(&from, &data.join("store")) {
                Ok((report, verified)) => {
                    let valid = verified.valid;
                    emit(
                        "restore",
                        &serde_json::json!({"restored": report, "audit": verified}),
                        None,
                    );
                    if valid {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("raccordo restore: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Monitoring {
            command:
                MonitoringCommand::Bench {
                    records,
                    seed,
                    threads,
                    out,
                },
        } => {
            let scratch =
                std::env::temp_dir().join(format!("raccordo-release-bench-{}", std::process::id()));
            let result =
                raccordo_gateway::monitoring::bench::run(records, seed, threads.max(1), &scratch);
            let _ = std::fs::remove_dir_all(&scratch);
            match result {
                Ok(report) => emit("monitoring bench", &report, out),
                Err(e) => {
                    eprintln!("raccordo monitoring bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Linkage { command } => linkage(command),
        Command::Pki { command } => pki(command),
        Command::Keys {
            command: KeysCommand::Rotate { config },
        } => match Settings::load(config.as_deref()).and_then(Config::from_settings) {
            Err(e) => {
                eprintln!("raccordo keys rotate: {e}");
                ExitCode::from(2)
            }
            Ok(config) => match raccordo_gateway::rotation::rotate(&config, time_now()) {
                Ok((epoch, report)) => {
                    println!("{}", serde_json::json!({"epoch": epoch, "report": report}));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("raccordo keys rotate: {e}");
                    ExitCode::FAILURE
                }
            },
        },
        Command::Bench {
            connections,
            seconds,
            warmup,
            out,
            postgres_url,
        } => match std::env::current_exe() {
            Ok(gateway_exe) => bench_command(
                BenchOptions {
                    connections: connections.max(1),
                    duration: Duration::from_secs(seconds.max(1)),
                    warmup: Duration::from_secs(warmup),
                    gateway_exe,
                    postgres_url,
                },
                out,
            ),
            Err(e) => {
                eprintln!("raccordo bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn time_now() -> raccordo_gateway::rotation::Now {
    raccordo_gateway::rotation::now()
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn serve(file: Option<PathBuf>) -> ExitCode {
    let config = match Settings::load(file.as_deref()).and_then(Config::from_settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raccordo serve: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = match telemetry::init(&config.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("raccordo serve: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let listen = config.listen;
            let data = config.data_dir.clone();
            let app = Application::build(config).map_err(|e| e.to_string())?;
            tracing::info!(address = %listen, port = app.port(), data_dir = %data.display(), "raccordo gateway listening (mTLS)");
            if let Some(port) = app.people_port() {
                tracing::info!(port, "people listener: console at /console/, bearer tokens on the API");
            }
            app.run_until_stopped().await.map_err(|e| e.to_string())
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gateway stopped");
            eprintln!("raccordo serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a report as JSON and, when asked, writes it to a file too.
fn emit<T: serde::Serialize>(command: &str, report: &T, out: Option<PathBuf>) -> ExitCode {
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    println!("{json}");
    if let Some(out) = out
        && let Err(e) = std::fs::write(&out, json + "\n")
    {
        eprintln!("raccordo {command}: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The configuration and the linkage encoder it implies, or the exit code of a usage error.
fn linkage_setup(
    command: &str,
    file: Option<&std::path::Path>,
) -> Result<(Config, raccordo_gateway::linkage::Encoder), ExitCode> {
    let fail = |e: String| {
        eprintln!("raccordo {command}: {e}");
        ExitCode::from(2)
    };
    let config = Settings::load(file)
        .and_then(Config::from_settings)
        .map_err(|e| fail(e.to_string()))?;
    let encoder =
        raccordo_gateway::linkage::keys::encoder_for(&config).map_err(|e| fail(e.to_string()))?;
    Ok((config, encoder))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn bench_command(options: BenchOptions, out: Option<PathBuf>) -> ExitCode {
    let scratch = std::env::temp_dir().join(format!("raccordo-bench-{}", std::process::id()));
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(bench::run(options, &scratch))
            .map_err(|e| e.to_string())
    });
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok(report) => emit("bench", &report, out),
        Err(e) => {
            eprintln!("raccordo bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn linkage(command: LinkageCommand) -> ExitCode {
    use raccordo_gateway::linkage::{eval, synth};
    match command {
        LinkageCommand::Synth {
            people,
            seed,
            share,
            left,
            right,
        } => {
            let mut population = synth::Population::new(seed, people);
            let (l, r) = population.two_registers(share.clamp(0.0, 1.0));
            for (path, rows) in [(&left, &l), (&right, &r)] {
                if let Err(e) = synth::write_csv(path, rows) {
                    eprintln!("raccordo linkage synth: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            eprintln!("{} and {} records written", l.len(), r.len());
            ExitCode::SUCCESS
        }
        LinkageCommand::Bench {
            people,
            seed,
            config,
            out,
        } => {
            let (config, encoder) = match linkage_setup("linkage bench", config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let thresholds = [
                config.linkage.review_threshold,
                config.linkage.auto_link_threshold,
            ];
            emit(
                "linkage bench",
                &eval::bench(&encoder, people, seed, &thresholds, cores()),
                out,
            )
        }
        LinkageCommand::Eval {
            left,
            right,
            truth,
            config,
            out,
        } => {
            let (config, encoder) = match linkage_setup("linkage eval", config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let (l, r) = match (
                eval::read_csv(&left, &truth),
                eval::read_csv(&right, &truth),
            ) {
                (Ok(l), Ok(r)) => (l, r),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("raccordo linkage eval: {e}");
                    return ExitCode::from(2);
                }
            };
            let (auto, review) = (
                config.linkage.auto_link_threshold,
                config.linkage.review_threshold,
            );
            let mut thresholds: Vec<f64> =
                (60..=98).step_by(2).map(|t| f64::from(t) / 100.0).collect();
            thresholds.extend([review, auto]);
            thresholds.sort_by(f64::total_cmp);
            thresholds.dedup();
            let report = eval::evaluate(&encoder, &l, &r, &thresholds, cores());
            eprintln!("threshold precision recall    f1     tp     fp     fn");
            for t in &report.thresholds {
                let mark = if t.threshold == auto {
                    " <- auto-link"
                } else if t.threshold == review {
                    " <- review"
                } else {
                    ""
                };
                eprintln!(
                    "{:>9.2} {:>9.4} {:>6.4} {:>6.4} {:>6} {:>6} {:>6}{mark}",
                    t.threshold,
                    t.precision,
                    t.recall,
                    t.f1,
                    t.true_positives,
                    t.false_positives,
                    t.false_negatives
                );
            }
            emit("linkage eval", &report, out)
        }
    }
}

fn pki(command: PkiCommand) -> ExitCode {
    use raccordo_gateway::region_ca::RegionCa;
    let now = raccordo_gateway::rotation::now();
    let result = match command {
        PkiCommand::Init { dir, name } => RegionCa::at(&dir)
            .init(&name, now)
            .map(|()| serde_json::json!({"ca": RegionCa::at(&dir).ca_cert(), "revocation_list": RegionCa::at(&dir).revoked()})),
        PkiCommand::Issue { dir, ambito, csr } => {
            let csr = match csr.map(std::fs::read_to_string).transpose() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("raccordo pki issue: {e}");
                    return ExitCode::from(2);
                }
            };
            RegionCa::at(&dir)
                .issue(&ambito, csr.as_deref(), now)
                .map(|(record, key)| serde_json::json!({"issued": record, "key": key}))
        }
        PkiCommand::List { dir } => RegionCa::at(&dir).list().map(|l| serde_json::json!(l)),
        PkiCommand::Revoke { dir, serial, reason } => {
            RegionCa::at(&dir).revoke(&serial, &reason, now).map(|r| serde_json::json!({"revoked": r}))
        }
    };
    match result {
        Ok(v) => emit("pki", &v, None),
        Err(e) => {
            eprintln!("raccordo pki: {e}");
            ExitCode::FAILURE
        }
    }
}
