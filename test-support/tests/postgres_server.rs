//! The launcher against the machine's PostgreSQL binaries.

use std::net::TcpStream;

use trace_store_test_support::PostgresServer;

#[test]
fn starts_accepts_connections_restarts_with_its_data_and_goes_away_on_drop() {
    let mut server = match PostgresServer::start() {
        Ok(server) => server,
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let port = server.port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(server.url().contains(&port.to_string()));
    server.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
    server.restart().expect("restart");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "restarted");
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "gone after drop"
    );
}
