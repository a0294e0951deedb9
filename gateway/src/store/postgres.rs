//! The PostgreSQL backend: the same key-value space in one table, shared by every gateway that
//! points at the database.
//!
//! The store's interface is synchronous (callers read inside a write's closure, as with sled).
//! The connections are driven by tokio-postgres on a small runtime of their own; callers block
//! on the client's futures with `futures_executor::block_on`, which needs no runtime on the
//! calling thread, so it works from actix's workers and from plain threads alike.
//!
//! Writers take turns on a row lock of the counter (`meta/seq ... FOR UPDATE`), so two gateways
//! never interleave writes: sequence numbers and the audit chain stay single. A write's commit
//! notifies the other gateways (`pg_notify`) so that their inbox long-polls wake; they also poll
//! the counter every second in case a notification is missed.

use super::applier::Durable;
use super::audit::AuditHead;
use super::{Entries, Op, Rows, StoreError, TxnReader, WriteTxn, keys};
use futures_executor::block_on;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

/// The schema, in order. A migration is never edited once released: its digest is recorded
/// when applied, and a changed one stops the gateway at start.
const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "kv", include_str!("../../migrations/0001_kv.sql"))];

/// Any key sorts below this (keys start with ASCII), so it bounds a range with no prefix.
const TOP: &[u8] = &[0xff];

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's message and code only: a DbError's detail can quote the values of a row.
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!("{} ({})", db.message(), db.code().code())),
            // With its causes: "error performing TLS handshake" alone does not say that the
            // certificate's issuer is unknown. These are transport errors, never row data.
            None => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(": ");
                    message.push_str(&cause.to_string());
                    source = cause.source();
                }
                StoreError::Postgres(message)
            }
        }
    }
}

/// One connection with its prepared statements.
pub(super) struct Session {
    client: Client,
    get: Statement,
    range: Statement,
    range_keys: Statement,
}

/// The writer's connection: a session plus the statements only writes use.
struct Writer {
    session: Session,
    lock: Statement,
    upsert: Statement,
    delete: Statement,
    notify: Statement,
}

struct Connector {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    runtime: tokio::runtime::Handle,
}

pub(super) struct PgStore {
    connector: Arc<Connector>,
    writer: Mutex<Option<Writer>>,
    readers: Vec<Mutex<Option<Arc<Session>>>>,
    next_reader: AtomicUsize,
    channel: String,
    durable: Arc<watch::Sender<Durable>>,
    // Dropped last, without blocking: dropping a runtime inside another one's context panics.
    runtime: Option<tokio::runtime::Runtime>,
}

fn unsupported(what: impl Into<String>) -> StoreError {
    StoreError::Unsupported(what.into())
}

impl Connector {
    /// Connects and hands the connection to the store's runtime, which drives it; notifications
    /// go to `notify` when given.
    fn connect(
        &self,
        notify: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    ) -> Result<Client, StoreError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let task = self.runtime.spawn(async move {
            match tls {
                Some(tls) => {
                    let (client, conn) = config.connect(tls).await?;
                    tokio::spawn(drive(conn, notify));
                    Ok(client)
                }
                None => {
                    let (client, conn) = config.connect(NoTls).await?;
                    tokio::spawn(drive(conn, notify));
                    Ok::<_, tokio_postgres::Error>(client)
                }
            }
        });
        match block_on(task) {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Postgres("the connection task ended".into())),
        }
    }

    fn session(&self) -> Result<Session, StoreError> {
        let client = self.connect(None)?;
        Session::prepare(client)
    }
}

/// Polls a connection until it closes, passing notifications on.
async fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notify: Option<tokio::sync::mpsc::UnboundedSender<()>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(_)) => {
                if let Some(n) = &notify {
                    let _ = n.send(());
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %StoreError::from(e), "PostgreSQL connection closed");
                break;
            }
        }
    }
}

impl Session {
    fn prepare(client: Client) -> Result<Session, StoreError> {
        block_on(async {
            let (get, range, range_keys) = futures_util::future::try_join3(
                client.prepare("SELECT v FROM raccordo_kv WHERE k = $1"),
                client.prepare(
                    "SELECT k, v FROM raccordo_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                ),
                client.prepare(
                    "SELECT k FROM raccordo_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
                ),
            )
            .await?;
            Ok(Session {
                client,
                get,
                range,
                range_keys,
            })
        })
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get(key)?)
    }

    fn try_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        let row = block_on(self.client.query_opt(&self.get, &[&key]))?;
        row.map(|r| r.try_get::<_, Vec<u8>>(0)).transpose()
    }

    pub(super) fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
        values: bool,
    ) -> Result<Rows, StoreError> {
        Ok(self.try_range(prefix, start, limit, values)?)
    }

    fn try_range(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
        values: bool,
    ) -> Result<Rows, tokio_postgres::Error> {
        let end = super::prefix_end(prefix).unwrap_or_else(|| TOP.to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = if values {
            &self.range
        } else {
            &self.range_keys
        };
        let rows = block_on(self.client.query(statement, &[&start, &end, &limit]))?;
        rows.into_iter()
            .map(|r| {
                let k: Vec<u8> = r.try_get(0)?;
                let v = if values {
                    Some(r.try_get::<_, Vec<u8>>(1)?)
                } else {
                    None
                };
                Ok((k, v))
            })
            .collect()
    }
}

impl Writer {
    fn prepare(client: Client) -> Result<Writer, StoreError> {
        let (lock, upsert, delete, notify) = block_on(futures_util::future::try_join4(
            client.prepare("SELECT v FROM raccordo_kv WHERE k = $1 FOR UPDATE"),
            client.prepare(
                "INSERT INTO raccordo_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            ),
            client.prepare("DELETE FROM raccordo_kv WHERE k = ANY($1)"),
            client.prepare("SELECT pg_notify($1, $2)"),
        ))?;
        Ok(Writer {
            session: Session::prepare(client)?,
            lock,
            upsert,
            delete,
            notify,
        })
    }
}

/// Refuses plain TCP to anything but this machine: records must not cross a network unencrypted.
fn check_transport(config: &Config, tls: bool) -> Result<(), StoreError> {
    if tls {
        return Ok(());
    }
    for host in config.get_hosts() {
        let local = match host {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        };
        if !local {
            return Err(unsupported(
                "store: PostgreSQL on another host needs TLS: set store.ca_file to the CAs that \
                 issue the database server's certificate",
            ));
        }
    }
    Ok(())
}

fn tls_connector(ca_file: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pki::load_certificates(ca_file).map_err(|e| unsupported(e.to_string()))? {
        roots
            .add(cert)
            .map_err(|e| unsupported(format!("store.ca_file: {e}")))?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PgStore {
    pub(super) fn open(
        url: &str,
        ca_file: Option<&Path>,
        pool_size: usize,
    ) -> Result<(PgStore, watch::Receiver<Durable>), StoreError> {
        let mut config: Config = url
            .parse()
            // The parser's message can quote the URL, password included.
            .map_err(|_| unsupported("store.url is not a PostgreSQL connection URL"))?;
        config.application_name("raccordo-gateway");
        config.connect_timeout(Duration::from_secs(10));
        let tls = match ca_file {
            Some(ca) => {
                if config.get_ssl_mode() == SslMode::Prefer {
                    config.ssl_mode(SslMode::Require);
                }
                Some(tls_connector(ca)?)
            }
            None => {
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        check_transport(&config, tls.is_some())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("raccordo-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres(format!("starting its runtime: {e}")))?;
        let connector = Arc::new(Connector {
            config,
            tls,
            runtime: runtime.handle().clone(),
        });
        match Self::start(connector, pool_size) {
            Ok((mut store, receiver)) => {
                store.runtime = Some(runtime);
                Ok((store, receiver))
            }
            Err(e) => {
                // Dropping a runtime blocks, which panics inside the caller's async context
                // (`raccordo serve` builds the gateway in one): a server that is down or a
                // certificate that does not verify must end in this error, not a panic.
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    /// Connects, migrates and opens the pool, on the runtime the connector drives.
    fn start(
        connector: Arc<Connector>,
        pool_size: usize,
    ) -> Result<(PgStore, watch::Receiver<Durable>), StoreError> {
        let client = connector.connect(None)?;
        migrate(&client)?;
        let writer = Writer::prepare(client)?;
        let (last_seq, _) = read_meta(&writer.session)?;
        let channel = channel_name(&writer.session)?;
        let durable = Arc::new(watch::Sender::new(Durable {
            seq: last_seq,
            failed: false,
        }));
        let receiver = durable.subscribe();
        let mut readers = Vec::with_capacity(pool_size);
        for _ in 0..pool_size.max(1) {
            readers.push(Mutex::new(Some(Arc::new(connector.session()?))));
        }
        connector.runtime.spawn(follow(
            Arc::clone(&connector),
            channel.clone(),
            Arc::clone(&durable),
        ));
        Ok((
            PgStore {
                connector,
                writer: Mutex::new(Some(writer)),
                readers,
                next_reader: AtomicUsize::new(0),
                channel,
                durable,
                runtime: None,
            },
            receiver,
        ))
    }

    /// The session in reader slot `i`, replaced by a new connection when it is closed or is
    /// the one a query just found `lost` (unless another read has replaced it already).
    fn reader(&self, i: usize, lost: Option<&Arc<Session>>) -> Result<Arc<Session>, StoreError> {
        let mut slot = self.readers[i].lock().map_err(|_| StoreError::Poisoned)?;
        match slot.as_ref() {
            Some(s) if !s.client.is_closed() && !lost.is_some_and(|l| Arc::ptr_eq(l, s)) => {
                Ok(Arc::clone(s))
            }
            _ => {
                let s = Arc::new(self.connector.session()?);
                *slot = Some(Arc::clone(&s));
                Ok(s)
            }
        }
    }

    /// Runs a read, and once more on a new connection when the first one turns out to be lost.
    /// A server restart or a terminated backend is only noticed by the next query on each
    /// pooled connection; a read is safe to repeat, so no request fails for it.
    fn read<T>(
        &self,
        op: impl Fn(&Session) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let session = self.reader(i, None)?;
        match op(&session) {
            Err(e) if connection_lost(&e) => {
                tracing::warn!(error = %StoreError::from(e), "a PostgreSQL reading connection was lost; reconnecting");
                let fresh = self.reader(i, Some(&session))?;
                Ok(op(&fresh)?)
            }
            r => Ok(r?),
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|s| s.try_get(key))
    }

    pub(super) fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
        values: bool,
    ) -> Result<Rows, StoreError> {
        self.read(|s| s.try_range(prefix, start, limit, values))
    }

    pub(super) fn visit_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut start = prefix.to_vec();
        loop {
            let page = self.range(prefix, &start, 5_000, true)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            start = last.clone();
            start.push(0);
            for (k, v) in &page {
                f(k, v.as_deref().unwrap_or_default())?;
            }
        }
    }

    pub(super) fn write_then<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
        then: impl FnOnce(&T),
    ) -> Result<(T, u64), E>
    where
        E: From<StoreError>,
    {
        let mut slot = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let writer = match slot.take() {
            Some(w) if !w.session.client.is_closed() => w,
            _ => self.open_writer()?,
        };
        let (writer, begun) = match begin(&writer) {
            Err(e) if connection_lost(&e) => {
                // Nothing was written on a connection that died before the transaction began,
                // so beginning again on a new one is safe; a loss later is not retried, as the
                // COMMIT may have been applied (the caller retries with its idempotency key).
                tracing::warn!(error = %StoreError::from(e), "the PostgreSQL writing connection was lost; reconnecting");
                let fresh = self.open_writer()?;
                let begun = begin(&fresh);
                (fresh, begun)
            }
            begun => (writer, begun),
        };
        let writer = slot.insert(writer);
        let result = match begun {
            Ok((seq, head)) => self.write_in(writer, &seq, head.as_deref(), f, then),
            Err(e) => Err(StoreError::from(e).into()),
        };
        if result.is_err() && !writer.session.client.is_closed() {
            // Ends the transaction if it is still open; harmless when it is not.
            let _ = block_on(writer.session.client.batch_execute("ROLLBACK"));
        }
        result
    }

    fn open_writer(&self) -> Result<Writer, StoreError> {
        Writer::prepare(self.connector.connect(None)?)
    }

    /// The write itself, in the transaction `begin` opened with the counter and audit head it
    /// locked and read.
    fn write_in<T, E>(
        &self,
        writer: &Writer,
        seq: &[u8],
        head: Option<&[u8]>,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
        then: impl FnOnce(&T),
    ) -> Result<(T, u64), E>
    where
        E: From<StoreError>,
    {
        let client = &writer.session.client;
        let (last_seq, audit_head) = super::decode_meta(Some(seq), head)?;
        // Committed by whichever gateway wrote it, so durable: no need to wait for its notice.
        self.durable.send_if_modified(|d| raise(d, last_seq));
        let mut txn = WriteTxn::new(TxnReader::Postgres(&writer.session), last_seq, audit_head);
        let out = f(&mut txn)?;
        let Some((ops, last, _)) = txn.finish()? else {
            block_on(client.batch_execute("ROLLBACK")).map_err(StoreError::from)?;
            return Ok((out, last_seq));
        };
        let (puts, removes) = split(ops);
        let (put_keys, put_values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = puts.into_iter().unzip();
        let last_text = last.to_string();
        let (upserted, removed, notified, committed) = block_on(futures_util::future::join4(
            client.execute(&writer.upsert, &[&put_keys, &put_values]),
            client.execute(&writer.delete, &[&removes]),
            client.query_one(&writer.notify, &[&self.channel, &last_text]),
            client.batch_execute("COMMIT"),
        ));
        // A failed statement aborts the transaction, and COMMIT then rolls back while reporting
        // success: every step must have succeeded for the write to have happened.
        upserted.map_err(StoreError::from)?;
        removed.map_err(StoreError::from)?;
        notified.map_err(StoreError::from)?;
        committed.map_err(StoreError::from)?;
        then(&out);
        self.durable.send_if_modified(|d| raise(d, last));
        Ok((out, last))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Opens a write's transaction: takes the counter's row lock and reads the counter and the audit
/// head under it.
fn begin(writer: &Writer) -> Result<(Vec<u8>, Option<Vec<u8>>), tokio_postgres::Error> {
    let client = &writer.session.client;
    let (begun, locked, head) = block_on(futures_util::future::join3(
        client.batch_execute("BEGIN"),
        client.query_one(&writer.lock, &[&keys::META_SEQ]),
        client.query_opt(&writer.session.get, &[&keys::META_AUDIT_HEAD]),
    ));
    begun?;
    let seq: Vec<u8> = locked?.try_get(0)?;
    let head: Option<Vec<u8>> = head?.map(|r| r.try_get(0)).transpose()?;
    Ok((seq, head))
}

/// Whether an error means the connection is gone (closed, broken, or ended by the server's
/// operator: SQLSTATE class 57P) rather than a failed statement.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error()
            .is_some_and(|d| d.code().code().starts_with("57P"))
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn raise(d: &mut Durable, seq: u64) -> bool {
    if seq > d.seq {
        d.seq = seq;
        true
    } else {
        false
    }
}

/// The last change to each key wins, as in a sled batch; puts and removes go out separately.
fn split(ops: Vec<Op>) -> (Entries, Vec<Vec<u8>>) {
    let last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = ops.into_iter().collect();
    let mut puts = Vec::new();
    let mut removes = Vec::new();
    for (k, v) in last {
        match v {
            Some(v) => puts.push((k, v)),
            None => removes.push(k),
        }
    }
    (puts, removes)
}

fn read_meta(session: &Session) -> Result<(u64, AuditHead), StoreError> {
    let seq = session.get(keys::META_SEQ)?;
    let head = session.get(keys::META_AUDIT_HEAD)?;
    super::decode_meta(seq.as_deref(), head.as_deref())
}

/// The notification channel of this store: one per schema, so that stores sharing a server but
/// not a schema do not wake each other.
fn channel_name(session: &Session) -> Result<String, StoreError> {
    let row = block_on(session.client.query_one("SELECT current_schema()", &[]))?;
    let schema: String = row.try_get(0)?;
    let safe: String = schema
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(format!("raccordo_{safe}"))
}

/// Follows the writes of every gateway on the database: wakes on their notifications, and reads
/// the counter every second anyway.
async fn follow(connector: Arc<Connector>, channel: String, durable: Arc<watch::Sender<Durable>>) {
    loop {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let connected = {
            let connector = Arc::clone(&connector);
            tokio::task::spawn_blocking(move || connector.connect(Some(tx))).await
        };
        let client = match connected {
            Ok(Ok(c)) => c,
            _ => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        while !client.is_closed() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
            // Drain notifications that arrived together: one read covers them all.
            while rx.try_recv().is_ok() {}
            match client
                .query_opt("SELECT v FROM raccordo_kv WHERE k = $1", &[&keys::META_SEQ])
                .await
            {
                Ok(Some(row)) => {
                    if let Ok(v) = row.try_get::<_, Vec<u8>>(0) {
                        let seq = keys::decode_u64(&v);
                        durable.send_if_modified(|d| raise(d, seq));
                    }
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies the migrations this binary knows and the database lacks, one transaction each, under
/// an advisory lock so that gateways starting together take turns.
fn migrate(client: &Client) -> Result<(), StoreError> {
    // Any constant shared by every gateway; this one spells "raccordo".
    const LOCK: i64 = 0x7261_6363_6f72_646f;
    block_on(client.execute("SELECT pg_advisory_lock($1)", &[&LOCK]))?;
    let result = apply_migrations(client);
    let unlocked = block_on(client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]));
    result?;
    unlocked?;
    Ok(())
}

fn apply_migrations(client: &Client) -> Result<(), StoreError> {
    block_on(client.batch_execute(
        "CREATE TABLE IF NOT EXISTS raccordo_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             sha256 text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    ))?;
    let applied: BTreeMap<i32, String> =
        block_on(client.query("SELECT version, sha256 FROM raccordo_migrations", &[]))?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some((&newest, _)) = applied.last_key_value()
        && newest > known
    {
        return Err(unsupported(format!(
            "store: the database is at schema version {newest}, newer than this gateway knows \
             ({known}); run the newer gateway"
        )));
    }
    for &(version, name, sql) in MIGRATIONS {
        let digest = crate::pki::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sql.as_bytes()).as_ref(),
        );
        match applied.get(&version) {
            Some(d) if *d == digest => continue,
            Some(_) => {
                return Err(unsupported(format!(
                    "store: migration {version} ({name}) differs from the one applied to this \
                     database; migrations must never change once released"
                )));
            }
            None => {}
        }
        let script = format!(
            "BEGIN;\n{sql}\nINSERT INTO raccordo_migrations (version, name, sha256) VALUES \
             ({version}, '{name}', '{digest}');\nCOMMIT;"
        );
        if let Err(e) = block_on(client.batch_execute(&script)) {
            let _ = block_on(client.batch_execute("ROLLBACK"));
            return Err(e.into());
        }
        tracing::info!(version, name, "store: migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_last_change_to_a_key_wins() {
        let ops = vec![
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), Some(b"2".to_vec())),
            (b"a".to_vec(), None),
            (b"b".to_vec(), Some(b"3".to_vec())),
        ];
        let (puts, removes) = super::split(ops);
        assert_eq!(puts, vec![(b"b".to_vec(), b"3".to_vec())]);
        assert_eq!(removes, vec![b"a".to_vec()]);
    }

    #[test]
    fn plain_tcp_is_refused_to_other_hosts() {
        let remote: tokio_postgres::Config = "postgres://u@db.example:5432/x".parse().unwrap();
        assert!(super::check_transport(&remote, false).is_err());
        assert!(super::check_transport(&remote, true).is_ok());
        let local: tokio_postgres::Config = "postgres://u@127.0.0.1/x".parse().unwrap();
        assert!(super::check_transport(&local, false).is_ok());
    }
}
