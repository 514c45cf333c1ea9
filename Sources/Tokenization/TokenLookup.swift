/// An open-addressing hash table from a token's UTF-8 bytes to its id, queried with byte slices so the
/// merge loops look up candidate strings without building `String`s.
struct TokenLookup: Sendable {
    private var storage: [UInt8] = []
    private var starts: [Int] = []
    private var slots: [Int32]
    private let mask: Int

    /// `strings[i]` gets id `i`; when a string occurs twice the first id wins.
    init(_ strings: [[UInt8]]) {
        var capacity = 16
        while capacity < strings.count * 2 { capacity <<= 1 }
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        starts.reserveCapacity(strings.count + 1)
        for s in strings {
            starts.append(storage.count)
            storage.append(contentsOf: s)
        }
        starts.append(storage.count)
        for id in strings.indices {
            let found = strings[id].withUnsafeBufferPointer { self.find($0) }
            if found != nil { continue }
            var slot = strings[id].withUnsafeBufferPointer { Self.hash($0) } & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(id)
        }
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf29ce484222325  // FNV-1a
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    func find(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var slot = Self.hash(bytes) & mask
        return storage.withUnsafeBufferPointer { store -> Int? in
            while true {
                let id = Int(slots[slot])
                if id < 0 { return nil }
                let start = starts[id], count = starts[id + 1] - start
                if count == bytes.count && (count == 0 || memcmpEqual(store.baseAddress! + start, bytes.baseAddress!, count)) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func find(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBufferPointer { find($0) } }
    func find(_ text: String) -> Int? { find(Array(text.utf8)) }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
