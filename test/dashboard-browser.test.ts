import { MemoryStorage } from '../src/index.ts'
import { dashboardBrowserTests } from './dashboard-browser-suite.ts'

// Memory holds no connection or timer until a component connects it, and each one disconnects.
dashboardBrowserTests('memory', async () => new MemoryStorage())
