/**
 * javax.transaction.xa.XAException error codes and XAResource votes, as they travel in `transaction` replies: a
 * PREPARE answers `200 <vote>`, an error `500 XAException:code=<n>,msg=<m>` (metaq-1.4.md §1.4).
 */
export const XaCodes = {
  XA_OK: 0,
  XA_RDONLY: 3,
  XA_HEURHAZ: 8,
  XA_RBROLLBACK: 100,
  XA_RBOTHER: 104,
  XA_RBTIMEOUT: 106,
  XAER_RMERR: -3,
  XAER_NOTA: -4,
  XAER_INVAL: -5,
  XAER_PROTO: -6,
  XAER_RMFAIL: -7,
} as const;
export type XaCode = (typeof XaCodes)[keyof typeof XaCodes];
