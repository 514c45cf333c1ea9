import Foundation

/// `1.23 GB` style sizes (decimal units, as disk sizes are usually quoted).
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
}
