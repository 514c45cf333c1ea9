/// Every merge method Crucible knows, by its mergekit name.
public enum MergeMethodRegistry {
    public static let all: [any MergeMethod] = [
        LinearMerge(),
        SlerpMerge(),
        PassthroughMerge(),
        TaskArithmeticFamilyMerge.taskArithmetic,
        TaskArithmeticFamilyMerge.ties,
        TaskArithmeticFamilyMerge.dareTies,
        TaskArithmeticFamilyMerge.dareLinear,
        TaskArithmeticFamilyMerge.breadcrumbs,
        TaskArithmeticFamilyMerge.breadcrumbsTies,
        TaskArithmeticFamilyMerge.della,
        TaskArithmeticFamilyMerge.dellaLinear,
        SCEMerge(),
        ModelStockMerge(),
        NuSlerpMerge(),
        MultiSlerpMerge(),
        KarcherMerge(),
        NearswapMerge(),
        ArceeFusionMerge(),
        RAMMerge.ram,
        RAMMerge.ramPlusTensorLocal,
    ]

    public static func method(named name: String) -> (any MergeMethod)? {
        all.first { $0.name == name }
    }

    public static var names: [String] { all.map(\.name) }
}
