from podium.ops.cli import main

raise SystemExit(main())
