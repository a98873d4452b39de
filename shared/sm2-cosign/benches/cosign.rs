//! Co-signing throughput and where the time goes.
//!
//! cargo bench -p sm2-cosign --bench cosign -- --warm-up-time 1 --measurement-time 3
//!
//! The default clock is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, via the
//! `cpu-time` crate), so numbers stay meaningful on a machine shared with other builds;
//! `SM2_BENCH_CLOCK=wall` switches to criterion's wall clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::semicolon_if_nothing_returned,
    clippy::cast_precision_loss,
    missing_docs
)]

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, Throughput};
use sm2::elliptic_curve::{
    Generate, Group,
    ops::{MulByGeneratorVartime, MulVartime},
};
use sm2::{NonZeroScalar, ProjectivePoint, SecretKey};
use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
use sm2_cosign::plain::{self, Digest};
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, OsRng, ServerKeyShare, SessionId};
use std::hint::black_box;
use std::time::Duration;

const MSG: &[u8] = b"nursing record: 2026-11-27 08:00 vitals normal";

fn keygen() -> (ClientKeyShare, ServerKeyShare) {
    let session = SessionId::random_os().unwrap();
    let (client, req) = ClientKeygen::start_os(session).unwrap();
    let (server, resp) = ServerKeygen::respond_os(session, &req).unwrap();
    let (c, confirm) = client.finish(&resp).unwrap();
    (c, server.confirm(&confirm).unwrap())
}

fn digests(c: &ClientKeyShare, msgs: &[&[u8]]) -> Vec<Digest> {
    msgs.iter()
        .map(|m| plain::message_digest(DEFAULT_ID, c.public().public_point(), m).unwrap())
        .collect()
}

fn end_to_end(c: &ClientKeyShare, s: &ServerKeyShare, msgs: &[&[u8]]) -> usize {
    let (srv, req) = ServerSignSession::new_os(s, DEFAULT_ID, msgs).unwrap();
    let d = digests(c, msgs);
    let (cli, commit) = ClientSignSession::commit_os(c, &req, &d).unwrap();
    let (srv, partial) = srv.respond_os(s, &commit).unwrap();
    let (_sigs, result) = cli.finish(c, &partial).unwrap();
    srv.finish(&result).unwrap().len()
}

fn rand_scalar() -> NonZeroScalar {
    NonZeroScalar::try_generate_from_rng(&mut OsRng).unwrap()
}

fn bench<M: Measurement>(cr: &mut Criterion<M>) {
    let (c, s) = keygen();

    let mut g = cr.benchmark_group("primitives");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let k = rand_scalar();
    let k2 = rand_scalar();
    let p = ProjectivePoint::from(*c.public().public_point());
    g.bench_function("kG fixed-base (constant time)", |b| {
        b.iter(|| ProjectivePoint::mul_by_generator(black_box(&*k)))
    });
    g.bench_function("kP variable-base (constant time)", |b| {
        b.iter(|| black_box(p) * *black_box(k))
    });
    g.bench_function("aG+bP (variable time, verification)", |b| {
        b.iter(|| {
            ProjectivePoint::mul_by_generator_and_mul_add_vartime(
                black_box(&*k),
                black_box(&*k2),
                &p,
            )
        })
    });
    g.bench_function("kG fixed-base (variable time)", |b| {
        b.iter(|| ProjectivePoint::mul_by_generator_vartime(black_box(&*k)))
    });
    g.bench_function("kP variable-base (variable time, wNAF)", |b| {
        b.iter(|| black_box(p).mul_vartime(black_box(&*k)))
    });
    g.bench_function("aG+bP as table kG + wNAF kP (variable time)", |b| {
        b.iter(|| {
            ProjectivePoint::mul_by_generator_vartime(black_box(&*k))
                + black_box(p).mul_vartime(black_box(&*k2))
        })
    });
    g.bench_function("k3·Q + k2·G as kP + table kG (constant time)", |b| {
        b.iter(|| black_box(p) * *black_box(k) + ProjectivePoint::mul_by_generator(black_box(&*k2)))
    });
    g.bench_function("k3·Q + k2·G as one lincomb (constant time)", |b| {
        b.iter(|| {
            <ProjectivePoint as sm2::elliptic_curve::ops::LinearCombination<
                [(ProjectivePoint, sm2::Scalar); 2],
            >>::lincomb(&[(black_box(p), *k), (ProjectivePoint::GENERATOR, *k2)])
        })
    });
    g.bench_function("to_affine (field inversion)", |b| {
        b.iter(|| black_box(p).to_affine())
    });
    g.finish();

    let mut g = cr.benchmark_group("plain");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let sk = SecretKey::try_generate_from_rng(&mut OsRng).unwrap();
    let sig = plain::sign_os(&sk, DEFAULT_ID, MSG).unwrap();
    g.bench_function("sign", |b| {
        b.iter(|| plain::sign_os(&sk, DEFAULT_ID, black_box(MSG)).unwrap())
    });
    // The key is derived once: `SecretKey::public_key` is a k·G of its own.
    let pk = sk.public_key();
    g.bench_function("verify", |b| {
        b.iter(|| plain::verify(&pk, DEFAULT_ID, black_box(MSG), &sig).unwrap())
    });
    g.finish();

    let mut g = cr.benchmark_group("cosign");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("client commit (k1·G + proof)", |b| {
        b.iter_batched(
            || ServerSignSession::new_os(&s, DEFAULT_ID, &[MSG]).unwrap().1,
            |req| ClientSignSession::commit_os(&c, &req, &req.digests).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("server respond (proof check + k3·Q1 + k2·G)", |b| {
        b.iter_batched(
            || {
                let (srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[MSG]).unwrap();
                let (_cli, commit) = ClientSignSession::commit_os(&c, &req, &req.digests).unwrap();
                (srv, commit)
            },
            |(srv, commit)| srv.respond_os(&s, &commit).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("client finish (s + verification)", |b| {
        b.iter_batched(
            || {
                let (srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[MSG]).unwrap();
                let (cli, commit) = ClientSignSession::commit_os(&c, &req, &req.digests).unwrap();
                let (_srv, partial) = srv.respond_os(&s, &commit).unwrap();
                (cli, partial)
            },
            |(cli, partial)| cli.finish(&c, &partial).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("server finish (verification before storing)", |b| {
        b.iter_batched(
            || {
                let (srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[MSG]).unwrap();
                let (cli, commit) = ClientSignSession::commit_os(&c, &req, &req.digests).unwrap();
                let (srv, partial) = srv.respond_os(&s, &commit).unwrap();
                let (_sigs, result) = cli.finish(&c, &partial).unwrap();
                (srv, result)
            },
            |(srv, result)| srv.finish(&result).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("end to end, all checks", |b| {
        b.iter(|| end_to_end(&c, &s, &[black_box(MSG)]))
    });
    g.bench_function("key generation, both sides", |b| b.iter(keygen));
    g.finish();

    let mut g = cr.benchmark_group("batch");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    let msgs: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("100 digests end to end", |b| {
        b.iter(|| end_to_end(&c, &s, &refs))
    });
    g.finish();
}

/// CPU time of the calling thread (ns), `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    u64::try_from(cpu_time::ThreadTime::now().as_duration().as_nanos()).unwrap_or(u64::MAX)
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e3, "µs cpu")
        } else {
            (1e6, "ms cpu")
        };
        for v in values {
            *v /= div;
        }
        unit
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        for v in values {
            *v = n * 1e9 / *v;
        }
        "elem/s cpu"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn main() {
    let wall = std::env::var("SM2_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    if wall {
        let mut c = Criterion::<WallTime>::default().configure_from_args();
        bench(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(CpuTime)
            .configure_from_args();
        bench(&mut c);
        c.final_summary();
    }
}
