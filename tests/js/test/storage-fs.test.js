// Storage API (/storage/v1) with object bytes on the local filesystem (the default backend).
// The cases live in lib/storage-suite.js; lib/storage-suite.js runs them once per backend.
import { storageSuite, fsStoredKeys } from '../lib/storage-suite.js';

storageSuite('fs', () => ({ OUTPOST_STORAGE_BACKEND: 'fs' }), { backend: 'fs', storedKeys: fsStoredKeys });
