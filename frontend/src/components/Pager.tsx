import { useId } from 'react';

export const PAGE_SIZES = [10, 25, 50] as const;

interface PagerProps {
  /** Names the navigation landmark, e.g. "Items pages". */
  label: string;
  page: number;
  pageSize: number;
  hasNext: boolean;
  onPage: (page: number) => void;
  onPageSize: (size: number) => void;
}

/** Previous/next paging. The API has no total count, so there is no "page N of M". */
export function Pager({ label, page, pageSize, hasNext, onPage, onPageSize }: PagerProps) {
  const sizeId = useId();
  return (
    <nav className="pager" aria-label={label}>
      <div className="pager-size">
        <label htmlFor={sizeId}>Rows per page</label>
        <select id={sizeId} value={pageSize} onChange={(event) => onPageSize(Number(event.target.value))}>
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size}>
              {size}
            </option>
          ))}
        </select>
      </div>
      <div className="pager-steps">
        <button type="button" className="button secondary small" onClick={() => onPage(page - 1)} disabled={page <= 1}>
          Previous
        </button>
        <span aria-live="polite">Page {page}</span>
        <button type="button" className="button secondary small" onClick={() => onPage(page + 1)} disabled={!hasNext}>
          Next
        </button>
      </div>
    </nav>
  );
}
