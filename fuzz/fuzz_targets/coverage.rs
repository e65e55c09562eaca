//! Fuzz the polygon coverage of grid cells: any ring (self-intersecting, degenerate, huge,
//! far away) gives finite fractions within [0, 1] and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (c0, r0) = (data[0] as usize, data[1] as usize);
    let (w, h) = (1 + data[2] as usize % 40, 1 + data[3] as usize % 40);
    let pts: Vec<(f64, f64)> = data[4..]
        .chunks_exact(16)
        .map(|c| {
            let x = f64::from_le_bytes(c[..8].try_into().unwrap());
            let y = f64::from_le_bytes(c[8..].try_into().unwrap());
            (x, y)
        })
        .filter(|(x, y)| x.is_finite() && y.is_finite() && x.abs() < 1e7 && y.abs() < 1e7)
        .collect();
    let mut edges = Vec::new();
    sinkmap::coverage::ring_edges(&pts, data[0] % 2 == 0, &mut edges);
    let mut acc = sinkmap::coverage::Accumulator::new(c0, r0, w, h);
    for e in &edges {
        acc.add_edge(e);
    }
    for v in acc.coverage() {
        assert!(v.is_finite() && (0.0..=1.0).contains(&v));
    }
});
