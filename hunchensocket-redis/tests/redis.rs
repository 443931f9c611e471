//! The adapters on a real `redis-server` (Debian's, started here on a free loopback port and
//! stopped by PID), driven through the adapter API with a recording namespace on each side:
//! broadcasts and requests cross, garbage and oversized messages are dropped, a stalled
//! subscriber's backlog stays bounded, and a Redis restart is reported and survived.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use hunchensocket_io::adapter::{
    AckAnswer, AckCallback, Adapter, AdapterFactory, BroadcastOptions, BroadcastPacket, Local,
    ServerAck, SocketId, SocketInfo,
};
use hunchensocket_redis::{ClassicAdapter, Config, Status};
use serde_json::{Value, json};

/// A redis-server of this test.
struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start(port: Option<u16>) -> Redis {
        let port = port.unwrap_or_else(|| {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("addr").port()
        });
        let dir = std::env::temp_dir().join(format!("hs-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/setup.sh installs Debian's redis-server)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Redis { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A namespace that records what the adapter asks of it.
#[derive(Default)]
struct Recorder {
    emitted: Mutex<Vec<(Vec<SocketId>, BroadcastPacket)>>,
    /// While set, `emit` waits (a stalled application).
    stalled: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Local for Recorder {
    fn emit(&self, sids: &[SocketId], packet: &BroadcastPacket, _volatile: bool) {
        if self.stalled.load(Ordering::Acquire) {
            // Stalls the adapter's task only: the runtime moves this worker's other tasks away.
            tokio::task::block_in_place(|| {
                while self.stalled.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        self.emitted
            .lock()
            .unwrap()
            .push((sids.to_vec(), packet.clone()));
        self.wake.notify_waiters();
    }
    fn emit_with_ack(
        &self,
        sids: &[SocketId],
        _packet: &BroadcastPacket,
        _timeout: Duration,
        on_ack: AckCallback,
    ) -> usize {
        // Each answer has a binary part: the socket's id in bytes.
        for sid in sids {
            on_ack(AckAnswer {
                value: json!([format!("ack from {sid}"), {"_placeholder": true, "num": 0}]),
                attachments: vec![Bytes::copy_from_slice(sid.as_bytes())],
            });
        }
        sids.len()
    }
    fn describe(&self, sids: &[SocketId]) -> Vec<SocketInfo> {
        sids.iter()
            .map(|sid| {
                SocketInfo::new(
                    sid.clone(),
                    json!({}),
                    vec![sid.to_string()],
                    json!({"n": 1}),
                )
            })
            .collect()
    }
    fn disconnect(&self, _sids: &[SocketId], _close: bool) {}
    fn server_event(&self, _data: Vec<Value>, ack: Option<ServerAck>) {
        if let Some(ack) = ack {
            ack(json!("pong"));
        }
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.emitted.lock().unwrap().len()
    }

    /// Waits (bounded) until `n` emits were recorded.
    async fn wait_for(&self, n: usize) -> bool {
        for _ in 0..100 {
            if self.count() >= n {
                return true;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), self.wake.notified()).await;
        }
        false
    }
}

async fn node(factory: &ClassicAdapter, sids: &[&str]) -> (Arc<dyn Adapter>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let weak: Weak<dyn Local> = Arc::downgrade(&(recorder.clone() as Arc<dyn Local>));
    let adapter = factory.create("/", weak);
    for sid in sids {
        adapter.add_all(&SocketId::from(*sid), &["room".to_string()]);
    }
    adapter.ready().await.expect("subscribed");
    (adapter, recorder)
}

fn event(name: &str) -> BroadcastPacket {
    BroadcastPacket::new("/", vec![json!(name), json!(1)], Vec::new())
}

async fn publish(url: &str, channel: &str, bytes: &[u8]) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(bytes)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_requests_cross_and_garbage_is_dropped() {
    let redis = Redis::start(None);
    let fa = ClassicAdapter::connect(Config::new(redis.url()))
        .await
        .unwrap();
    let fb = ClassicAdapter::connect(Config::new(redis.url()))
        .await
        .unwrap();
    let (a, _ra) = node(&fa, &["a1"]).await;
    let (_b, rb) = node(&fb, &["b1", "b2"]).await;
    assert_eq!(a.server_count().await, 2);

    a.broadcast(&event("hello"), &BroadcastOptions::to(["room".to_string()]))
        .unwrap();
    assert!(rb.wait_for(1).await, "the broadcast reached the other node");
    let (sids, packet) = rb.emitted.lock().unwrap()[0].clone();
    assert_eq!(sids.len(), 2);
    assert_eq!(packet.data, vec![json!("hello"), json!(1)]);

    let found = a.fetch_sockets(&BroadcastOptions::default()).await;
    assert!(found.error.is_none(), "{:?}", found.error);
    let mut ids: Vec<_> = found.value.iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["b1", "b2"]);
    let acks = a
        .broadcast_with_ack(
            &event("q"),
            &BroadcastOptions::default(),
            Duration::from_secs(2),
        )
        .await;
    assert_eq!(acks.value.len(), 2, "{acks:?}");
    // Binary parts cross Redis as MessagePack bin and come back as attachments.
    let mut binary: Vec<_> = acks
        .value
        .iter()
        .map(|a| {
            assert_eq!(a.value[1], json!({"_placeholder": true, "num": 0}), "{a:?}");
            assert_eq!(a.attachments.len(), 1, "{a:?}");
            (a.value[0].clone(), a.attachments[0].clone())
        })
        .collect();
    binary.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        binary,
        [
            (json!("ack from b1"), Bytes::from_static(b"b1")),
            (json!("ack from b2"), Bytes::from_static(b"b2"))
        ]
    );
    let answers = a
        .server_side_emit_with_ack(&[json!("ping")], Duration::from_secs(2))
        .await;
    assert_eq!(answers.value, vec![json!("pong")]);

    // Garbage on every channel of the namespace, and one message over the size limit.
    let url = redis.url();
    for channel in [
        "socket.io#/#",
        "socket.io#/#room#",
        "socket.io-request#/#",
        "socket.io-response#/#",
    ] {
        for bytes in [
            &b"\xc1garbage"[..],
            b"\x93\xa1x",
            b"{not json",
            b"\x93\x01\x02\x03",
            b"{\"type\":5}",
        ] {
            publish(&url, channel, bytes).await;
        }
    }
    publish(&url, "socket.io#/#", &vec![0x90u8; 5 << 20]).await;
    a.broadcast(&event("after"), &BroadcastOptions::default())
        .unwrap();
    assert!(rb.wait_for(2).await, "still delivering after the garbage");
    assert_eq!(rb.emitted.lock().unwrap()[1].1.data[0], json!("after"));
    assert!(
        fb.dropped_messages() >= 21,
        "dropped {}",
        fb.dropped_messages()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_keeps_a_bounded_backlog() {
    let redis = Redis::start(None);
    let fa = ClassicAdapter::connect(Config::new(redis.url()))
        .await
        .unwrap();
    let limit = 1 << 20;
    let fb = ClassicAdapter::connect(Config::new(redis.url()).max_inbound_bytes(limit))
        .await
        .unwrap();
    let (a, _) = node(&fa, &[]).await;
    let (_b, rb) = node(&fb, &["b1"]).await;
    rb.stalled.store(true, Ordering::Release);
    let big = BroadcastPacket::new(
        "/",
        vec![json!("big"), json!("x".repeat(100_000))],
        Vec::new(),
    );
    for _ in 0..100 {
        a.broadcast(&big, &BroadcastOptions::default()).unwrap();
    }
    // 10 MB sent at a stalled node with a 1 MiB backlog: most of it is dropped, not queued.
    for _ in 0..100 {
        if fb.dropped_messages() >= 80 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fb.dropped_messages() >= 80,
        "dropped {}",
        fb.dropped_messages()
    );
    rb.stalled.store(false, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = rb.count();
    assert!(
        delivered <= 1 + limit / 100_000,
        "{delivered} delivered past the bound"
    );
    a.broadcast(&event("after"), &BroadcastOptions::default())
        .unwrap();
    assert!(
        rb.wait_for(delivered + 1).await,
        "delivering again once unstalled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_reported_and_survived() {
    let mut redis = Redis::start(None);
    let port = redis.port;
    let fa = ClassicAdapter::connect(Config::new(redis.url()))
        .await
        .unwrap();
    let fb = ClassicAdapter::connect(Config::new(redis.url()))
        .await
        .unwrap();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let seen = statuses.clone();
    fa.on_status(move |s| seen.lock().unwrap().push(s));
    let (a, _) = node(&fa, &[]).await;
    let (_b, rb) = node(&fb, &["b1"]).await;
    a.broadcast(&event("before"), &BroadcastOptions::default())
        .unwrap();
    assert!(rb.wait_for(1).await);

    redis.stop();
    for _ in 0..50 {
        if !fa.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!fa.is_connected(), "the outage is noticed");
    // Broadcasts during the outage fail or are dropped, never panic.
    let _ = a.broadcast(&event("lost"), &BroadcastOptions::default());
    drop(redis);
    let _redis = Redis::start(Some(port));
    let mut delivered = false;
    for _ in 0..60 {
        let before = rb.count();
        let _ = a.broadcast(&event("again"), &BroadcastOptions::default());
        tokio::time::sleep(Duration::from_millis(250)).await;
        if rb.count() > before {
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "cross-node delivery resumed after Redis came back"
    );
    let statuses = statuses.lock().unwrap().clone();
    assert!(
        matches!(statuses.first(), Some(Status::Disconnected(_))),
        "{statuses:?}"
    );
    assert!(statuses.contains(&Status::Reconnected), "{statuses:?}");
}
