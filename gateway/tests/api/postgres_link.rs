//! The link to PostgreSQL (the PostgreSQL pass of the suite only; on sled these return at
//! once): TLS to the database with the CA the operator names, and connections found dead
//! replaced without failing requests.

use crate::harness::{TestApp, postgres, referral, settings_for};
use raccordo_gateway::{Application, Config};

/// The CA of the test server's certificate (`.ci/postgres` prints it; `.ci/test` passes it on).
fn test_server_ca() -> String {
    std::env::var("RACCORDO_TEST_POSTGRES_CA").expect(
        "RACCORDO_TEST_POSTGRES_CA: the CA file .ci/postgres prints, needed with RACCORDO_TEST_POSTGRES",
    )
}

#[tokio::test]
async fn with_a_ca_file_the_database_link_is_tls_and_verified() {
    let Some(base) = postgres() else {
        return;
    };
    let ca = test_server_ca();
    let app = TestApp::spawn_with(|s| s.store.ca_file = ca.clone()).await;
    let id = app.create("prato", "firenze").await;
    let r = app.referral("firenze", &id).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The gateway's connections are encrypted; the other tests' (plain, to this local server)
    // are not, so any TLS connection named after the gateway is this one's.
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name = 'raccordo-gateway' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        encrypted >= 2,
        "{encrypted} TLS connections: the writer and a reader at least"
    );
}

#[tokio::test]
async fn a_database_certificate_the_named_cas_did_not_issue_stops_the_gateway() {
    if postgres().is_none() {
        return;
    }
    raccordo_gateway::tls::install_default_provider();
    let dir = tempfile::TempDir::new().unwrap();
    let mut settings = settings_for(dir.path()).await;
    settings.listen.address = ([127, 0, 0, 1], 0).into();
    // Public CAs: a real bundle, none of which issued the test server's certificate.
    settings.store.ca_file = "/etc/ssl/certs/ca-certificates.crt".into();
    let Err(e) = Application::build(Config::from_settings(settings).unwrap()) else {
        panic!("the gateway started on a database whose certificate it cannot verify");
    };
    let message = e.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(
        !message.contains("raccordo_test@"),
        "the error quotes the URL: {message}"
    );
}

/// PostgreSQL only: connections that died while idle in the pool (a failover, a restarted
/// server, a firewall dropping idle flows) are replaced without failing the requests that meet
/// them. The gateway reaches PostgreSQL through a relay that cuts every connection silently, so
/// each pooled connection is only found dead when next used, as after a real outage.
#[tokio::test]
async fn connections_found_dead_are_replaced_without_failing_a_request() {
    let Some(base) = postgres() else {
        return; // the sled pass: no connections
    };
    let server = base
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let upstream = tokio::net::lookup_host(&server)
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::start(upstream);
    let app = TestApp::spawn_with(|s| {
        s.store.pool_size = 3;
        let url =
            s.store
                .url
                .expose()
                .replacen(&format!("@{server}/"), &format!("@{}/", relay.addr), 1);
        s.store.url = raccordo_gateway::secret::Secret::new(url);
    })
    .await;
    let id = app.create("prato", "firenze").await;
    for round in 0..2 {
        relay.cut();
        let r = app
            .send_referral(
                "prato",
                &referral("prato", "firenze"),
                Some(&format!("after-cut-{round}")),
            )
            .await;
        assert_eq!(r.status, 201, "round {round}: {}", r.text);
        // Enough reads to meet each pooled reader, every one of them dead.
        for i in 0..4 {
            let r = app.referral("prato", &id).await;
            assert_eq!(r.status, 200, "round {round}, read {i}: {}", r.text);
        }
    }
    let r = app.get("firenze", "/v1/inbox").await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.text
    );
}

/// A TCP relay whose `cut` kills every connection it carries without telling either end: the
/// first bytes the client sends afterwards close its socket instead of being passed on.
struct Relay {
    addr: std::net::SocketAddr,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    /// On a thread of its own: the gateway connects while the test's runtime is blocked in
    /// `Application::build`.
    fn start(upstream: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering::SeqCst;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let current = std::sync::Arc::clone(&generation);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((client, _)) = listener.accept().await {
                    let born = current.load(SeqCst);
                    let (up_gen, down_gen) = (
                        std::sync::Arc::clone(&current),
                        std::sync::Arc::clone(&current),
                    );
                    tokio::spawn(async move {
                        let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (mut client_rx, mut client_tx) = client.into_split();
                        let (mut server_rx, mut server_tx) = server.into_split();
                        let up = async move {
                            let mut buf = vec![0u8; 16 << 10];
                            loop {
                                match client_rx.read(&mut buf).await {
                                    Ok(n) if n > 0 && up_gen.load(SeqCst) == born => {
                                        if server_tx.write_all(&buf[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                    _ => return,
                                }
                            }
                        };
                        let down = async move {
                            let mut buf = vec![0u8; 16 << 10];
                            loop {
                                match server_rx.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    // After the cut the server's words are lost on the way.
                                    Ok(_) if down_gen.load(SeqCst) != born => {}
                                    Ok(n) => {
                                        if client_tx.write_all(&buf[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        };
                        // Either side ending drops both sockets.
                        tokio::select! {
                            () = up => {}
                            () = down => {}
                        }
                    });
                }
            });
        });
        Relay { addr, generation }
    }

    fn cut(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
