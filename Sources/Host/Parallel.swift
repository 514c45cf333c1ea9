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

/// The first error thrown by any of several parallel workers.
public final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?

    public init() {}

    public var error: Error? { lock.lock(); defer { lock.unlock() }; return first }

    public func record(_ e: Error) {
        lock.lock()
        if first == nil { first = e }
        lock.unlock()
    }

    /// Rethrows the first recorded error, if any.
    public func check() throws {
        if let e = error { throw e }
    }
}

/// `parallelFor` whose body may throw: every iteration runs, and the first error is rethrown at the end.
public func parallelForThrowing(_ count: Int, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                                _ body: (Int) throws -> Void) throws {
    let failure = FirstError()
    parallelFor(count, threads: threads) { i in
        do { try body(i) } catch { failure.record(error) }
    }
    try failure.check()
}
