// Shapes of the Nexa API (components/api/openapi.json), as the dashboard uses them.

export type Role = 'admin' | 'user';

export interface User {
  id: number;
  email: string;
  username: string;
  role: Role;
  is_active: boolean;
  created_at: string;
}

export interface UserCreate {
  email: string;
  username: string;
  password: string;
  role?: Role;
}

export interface Item {
  id: number;
  name: string;
  description: string | null;
  price: number;
  is_available: boolean;
  owner_id: number;
  created_at: string;
  updated_at: string;
}

/**
 * What the item form sends. `price` stays the string the person typed: the API
 * accepts numeric strings, and that avoids binary floating point rounding "12.30".
 */
export interface ItemDraft {
  name: string;
  description: string | null;
  price: string;
  is_available: boolean;
}

export type ItemPatch = Partial<ItemDraft>;

export interface TokenResponse {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
}

export type ProbeStatus = 'healthy' | 'unhealthy';

export interface Probe {
  status: ProbeStatus;
  latency_ms: number;
  error?: string;
}

export interface Health {
  status: 'operational' | 'degraded';
  version: string;
  components: {
    database: Probe;
    cache: Probe;
  };
  timestamp: string;
}

export interface ValidationIssue {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
}
