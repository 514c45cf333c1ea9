import Foundation

/// Runs `body(i)` for i in 0..<count on up to `threads` cores. Work is split into contiguous chunks.
public func parallelFor(_ count: Int, threads: Int = ProcessInfo.processInfo.activeProcessorCount, _ body: (Int) -> Void) {
    if count <= 0 { return }
    let t = max(1, min(threads, count))
    if t == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: t) { chunk in
            let lo = count * chunk / t
            let hi = count * (chunk + 1) / t
            for i in lo..<hi { body(i) }
        }
    }
}

/// Peak resident set size of this process in bytes (VmHWM on Linux), or nil where unknown.
public func peakResidentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
}
