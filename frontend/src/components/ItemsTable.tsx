import type { Item, User } from '../api/types';
import { itemChangeBlocker, NOT_OWNER_REASON } from '../auth/permissions';
import { formatDateTime, formatPrice } from '../format';

export type SortOrder = 'asc' | 'desc';

interface ItemsTableProps {
  items: Item[];
  user: User | null;
  order: SortOrder;
  onToggleOrder: () => void;
  onEdit: (item: Item) => void;
  onToggleAvailability: (item: Item) => void;
  onDelete: (item: Item) => void;
  /** Items with a request under way; their buttons wait for it. */
  busyIds: ReadonlySet<number>;
  /** Id of the visible text explaining why signed-out visitors cannot change anything. */
  signedOutReasonId: string;
}

/**
 * The rows of one page. Under ~600px the CSS turns each row into a card, using
 * each cell's data-label as its caption.
 */
export function ItemsTable(props: ItemsTableProps) {
  const { items, order, onToggleOrder } = props;
  return (
    <div className="table-wrap">
      <table className="data-table items-table">
        <caption className="visually-hidden">Items</caption>
        <thead>
          <tr>
            <th scope="col" aria-sort={order === 'asc' ? 'ascending' : 'descending'}>
              <button type="button" className="sort-button" onClick={onToggleOrder} aria-label="Sort by ID">
                ID <span aria-hidden="true">{order === 'asc' ? '▲' : '▼'}</span>
              </button>
            </th>
            <th scope="col">Name</th>
            <th scope="col">Description</th>
            <th scope="col" className="numeric">
              Price
            </th>
            <th scope="col">Available</th>
            <th scope="col">Owner</th>
            <th scope="col">Updated</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <ItemRow key={item.id} item={item} {...props} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ItemRow({
  item,
  user,
  onEdit,
  onToggleAvailability,
  onDelete,
  busyIds,
  signedOutReasonId,
}: ItemsTableProps & { item: Item }) {
  const blocker = itemChangeBlocker(user, item);
  const ownReasonId = `item-${item.id}-locked`;
  // Signed-out visitors get one explanation above the table instead of one per row.
  const reasonId = blocker === NOT_OWNER_REASON ? ownReasonId : blocker ? signedOutReasonId : undefined;
  const disabled = blocker !== null || busyIds.has(item.id);
  const availabilityAction = item.is_available ? 'Mark unavailable' : 'Mark available';
  const lock = { disabled, title: blocker ?? undefined, 'aria-describedby': reasonId };

  return (
    <tr>
      <td data-label="ID">{item.id}</td>
      <td data-label="Name" className="item-name">
        {item.name}
      </td>
      <td data-label="Description" className="item-description">
        {item.description ?? <span className="muted">—</span>}
      </td>
      <td data-label="Price" className="numeric">
        {formatPrice(item.price)}
      </td>
      <td data-label="Available">
        <span className={`pill ${item.is_available ? 'pill-yes' : 'pill-no'}`}>
          {item.is_available ? 'Yes' : 'No'}
        </span>
      </td>
      <td data-label="Owner">{user?.id === item.owner_id ? `You (#${item.owner_id})` : `#${item.owner_id}`}</td>
      <td data-label="Updated">
        <time dateTime={item.updated_at}>{formatDateTime(item.updated_at)}</time>
      </td>
      <td data-label="Actions">
        <div className="row-actions">
          {/* aria-label adds the item name: "Edit" alone is ambiguous in a list of rows. */}
          <button
            type="button"
            className="button secondary small"
            onClick={() => onEdit(item)}
            aria-label={`Edit ${item.name}`}
            {...lock}
          >
            Edit
          </button>
          <button
            type="button"
            className="button secondary small"
            onClick={() => onToggleAvailability(item)}
            aria-label={`${availabilityAction} ${item.name}`}
            {...lock}
          >
            {availabilityAction}
          </button>
          <button
            type="button"
            className="button danger-outline small"
            onClick={() => onDelete(item)}
            aria-label={`Delete ${item.name}`}
            {...lock}
          >
            Delete
          </button>
        </div>
        {blocker === NOT_OWNER_REASON && (
          <p id={ownReasonId} className="lock-reason">
            {NOT_OWNER_REASON}
          </p>
        )}
      </td>
    </tr>
  );
}
