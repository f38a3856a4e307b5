from charger.cli import main

raise SystemExit(main())
