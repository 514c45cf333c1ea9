import CrucibleCLI
CrucibleCommand.main()
