from devhost.emulator.server import main

raise SystemExit(main())
