//! Resolving a generated 1,000-node descriptor (three levels of extends, two references per
//! node) against a baseline of merely parsing the same text with `vcds_xml::parse`.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-cdl cargo bench -p vcds-cdl --bench resolve`

use std::time::{Duration, Instant};

use vcds_cdl::{resolve, resolve_path, DocId, MemoryResolver};

const NODES: usize = 1_000;
const RUNS: usize = 200;

fn descriptor() -> String {
    let mut s = String::from(
        r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0" xmlns:b="urn:bench">
  <cdl:configuration>
    <b:Base><cpus>1</cpus><memoryMiB>1024</memoryMiB><diskGiB>20</diskGiB><host>unset</host><role>node</role></b:Base>
    <b:Mid cdl:extends="b:Base"><memoryMiB>2048</memoryMiB><rack>r1</rack><url cdl:ref="host"/></b:Mid>
    <b:Top cdl:extends="b:Mid"><cpus>4</cpus><os><name>Rocks</name><version>7.0</version></os></b:Top>
  </cdl:configuration>
  <cdl:system>
"#,
    );
    for i in 0..NODES {
        let peer = if i == 0 { NODES - 1 } else { i - 1 };
        s.push_str(&format!(
            "    <n{i} cdl:extends=\"b:Top\"><host>node-{i}</host><peer cdl:ref=\"/n{peer}/host\"/></n{i}>\n"
        ));
    }
    s.push_str("  </cdl:system>\n</cdl:cdl>\n");
    s
}

/// Minimum, median and p99 wall time of `f`. The minimum is the best estimate of the
/// uncontended cost when the machine is shared (other builds on the same cores).
fn measure(mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    for _ in 0..10 {
        f();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[RUNS / 2], times[RUNS * 99 / 100])
}

fn main() {
    let text = descriptor();
    let id = DocId::new("bench.cdl");
    let files = MemoryResolver::new();
    let doc = match resolve(&text, &id, &files) {
        Ok(d) => d,
        Err(e) => panic!("the generated descriptor must resolve: {e}"),
    };
    let url = resolve_path(&doc, "/n7/url").map(|e| e.value().to_string());
    let peer = resolve_path(&doc, "/n7/peer").map(|e| e.value().to_string());
    assert_eq!(
        (url.as_deref(), peer.as_deref()),
        (Ok("node-7"), Ok("node-6"))
    );

    let limits = vcds_xml::Limits::default();
    let (parse_min, parse_p50, parse_p99) = measure(|| {
        std::hint::black_box(vcds_xml::parse(std::hint::black_box(&text), &limits).is_ok());
    });
    let (resolve_min, resolve_p50, resolve_p99) = measure(|| {
        std::hint::black_box(resolve(std::hint::black_box(&text), &id, &files).is_ok());
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("descriptor: {NODES} nodes, 3 levels of extends, 2 references per node, {} bytes; {RUNS} runs", text.len());
    println!(
        "baseline vcds_xml::parse: min {:.3} ms, median {:.3} ms, p99 {:.3} ms",
        ms(parse_min),
        ms(parse_p50),
        ms(parse_p99)
    );
    println!(
        "vcds_cdl::resolve:       min {:.3} ms, median {:.3} ms, p99 {:.3} ms",
        ms(resolve_min),
        ms(resolve_p50),
        ms(resolve_p99)
    );
    println!(
        "ratio resolve/parse: min {:.1}x, median {:.1}x, p99 {:.1}x",
        ms(resolve_min) / ms(parse_min),
        ms(resolve_p50) / ms(parse_p50),
        ms(resolve_p99) / ms(parse_p99)
    );
    let verdict = |d: Duration| {
        if d < Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "target < 10 ms: median {}, p99 {}",
        verdict(resolve_p50),
        verdict(resolve_p99)
    );
}
